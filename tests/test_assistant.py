"""The assistant's decisions as pure functions: knowledge backend, rules, signals, summary,
the openai backend against a local chat-completions server, and the handoff comment."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from aiohttp import web

from gateway.config import AssistantSettings, load_settings
from gateway.errors import ConfigError
from gateway.jobs.knowledge import knowledge_base
from gateway.models import AUTO_REPLY, OUT_OF_OFFICE
from gateway.openai_client import OpenAIChatClient
from gateway.pipeline.assistant import (
    ESCALATE,
    NOTHING,
    OFF_REASON,
    REPLY,
    Assistant,
    ConversationView,
    EscalationFacts,
    MessageView,
    OffBackend,
    handoff_comment,
)
from gateway.pipeline.assistant.knowledge import (
    NO_CONFIDENT_ANSWER,
    KnowledgeBackend,
    KnowledgeBase,
    parse_article,
)
from gateway.pipeline.assistant.llm import OpenAIBackend, parse_answer
from gateway.pipeline.assistant.signals import analyse, label, language, sentiment
from gateway.pipeline.assistant.summary import extractive_summary, identifiers

from conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "examples" / "knowledge"
SETTINGS = AssistantSettings(backend="knowledge", knowledge_dir=KNOWLEDGE)


def conversation(*texts: str, subject: str = "Question", status: str = "open", **kw):
    """A conversation whose customer mails carry the signals intake stores with them."""
    messages = []
    for i, text in enumerate(texts, start=1):
        sig = analyse(text)
        messages.append(
            MessageView(
                id=i,
                direction="in",
                subject=subject,
                text=text,
                sender_email="alice@customer.test",
                sender_name="Alice Customer",
                sentiment=sig.sentiment,
                sentiment_label=sig.sentiment_label,
                language=sig.language,
                **kw,
            )
        )
    return ConversationView(
        id=7,
        subject=subject,
        status=status,
        customer_email="alice@customer.test",
        customer_name="Alice Customer",
        messages=tuple(messages),
    )


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return knowledge_base(KNOWLEDGE)


@pytest.fixture
def assistant(kb) -> Assistant:
    return Assistant(SETTINGS, KnowledgeBackend(kb, SETTINGS.confidence))


# --------------------------------------------------------------------------- knowledge


async def test_password_question_is_answered_from_the_password_article(assistant):
    d = await assistant.decide(conversation("How do I reset my password?", subject="Password"))
    assert d.action == REPLY, d
    assert d.source.startswith("Resetting your password")
    assert "Forgot password?" in d.markdown  # the section's own steps
    assert "https://help.example.com/articles/password-reset" in d.markdown  # and its link
    assert d.markdown.startswith("Hello Alice,")
    assert d.confidence >= SETTINGS.confidence


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("Where can I download my invoice?", "Invoices and billing"),
        ("How do I delete my account?", "Deleting your account"),
        ("Hello, I forgot my password, how can I reset it? Thanks, Alice", "Resetting"),
    ],
)
async def test_other_questions_find_their_article(assistant, question, article):
    d = await assistant.decide(conversation(question))
    assert d.action == REPLY and d.source.startswith(article), d


async def test_unknown_question_escalates_with_no_confident_answer(assistant):
    d = await assistant.decide(conversation("Can I pay in bitcoin or with gold coins?"))
    assert d.action == ESCALATE
    assert d.reasons[0].startswith(NO_CONFIDENT_ANSWER)
    assert d.summary.startswith("Subject: Question")


def test_articles_split_into_sections_with_front_matter():
    sections = parse_article(
        "---\nurl: https://x.test/a\n---\n# Title\n\nIntro.\n\n## One\nFirst.\n\n## Two\nSecond.\n"
    )
    assert [(s.article, s.heading, s.body, s.url) for s in sections] == [
        ("Title", "", "Intro.", "https://x.test/a"),
        ("Title", "One", "First.", "https://x.test/a"),
        ("Title", "Two", "Second.", "https://x.test/a"),
    ]


# --------------------------------------------------------------------------- rules


async def test_refund_with_anger_escalates_for_keyword_and_sentiment(assistant):
    d = await assistant.decide(
        conversation("I want a refund, this is the third time it broke!", subject="Broken again")
    )
    assert d.action == ESCALATE
    assert any('keyword "refund"' in r for r in d.reasons), d.reasons
    assert any(r.startswith("negative sentiment") for r in d.reasons), d.reasons


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "Kann ich bitte mit einem Menschen sprechen?",
        "Est-ce que je peux parler à un humain ?",
        "¿Puedo hablar con una persona?",
    ],
)
async def test_asking_for_a_person_escalates_in_any_language(assistant, text):
    d = await assistant.decide(conversation(text))
    assert d.action == ESCALATE
    assert any(r.startswith("the customer asks for a person") for r in d.reasons), d.reasons


async def test_too_many_replies_and_attachments_escalate(kb):
    settings = dataclasses.replace(SETTINGS, max_replies=2, escalate_attachments=True)
    a = Assistant(settings, KnowledgeBackend(kb, settings.confidence))
    conv = dataclasses.replace(conversation("How do I reset my password?"), assistant_replies=2)
    d = await a.decide(conv)
    assert d.action == ESCALATE and "already replied 2 time(s)" in d.reason
    conv = conversation("How do I reset my password?", attachments=("screenshot.png",))
    d = await a.decide(conv)
    assert d.action == ESCALATE and "screenshot.png" in d.reason


async def test_automatic_mail_and_closed_conversations_get_nothing(assistant):
    ooo = conversation("I am out of the office", annotations=frozenset({AUTO_REPLY, OUT_OF_OFFICE}))
    assert (await assistant.decide(ooo)).action == NOTHING
    closed = conversation("How do I reset my password?", status="handed_off")
    assert (await assistant.decide(closed)).action == NOTHING


async def test_off_backend_hands_everything_off():
    d = await Assistant(AssistantSettings(), OffBackend()).decide(
        conversation("How do I reset my password?")
    )
    assert d.action == ESCALATE and d.reasons == (OFF_REASON,) and d.summary


# --------------------------------------------------------------------------- signals, summary


def test_sentiment_and_language():
    score, lbl = sentiment("This is terrible, I am really angry")
    assert lbl == "negative" and score < -0.5
    assert sentiment("Thanks, that helped a lot!")[1] == "positive"
    assert sentiment("")[1] == "neutral"
    assert language("Kann ich bitte mit einem Menschen sprechen?") == "de"
    assert language("Est-ce que je peux parler à un humain ?") == "fr"
    assert language("How do I reset my password?") == "en"
    assert language("Hi") == ""


def test_extractive_summary_keeps_request_identifiers_and_answers():
    conv = conversation(
        "Hello team,\n\nmy order 12345 did not arrive. The tracking number is DHL-99887766. "
        "Could you check? Also a fourth sentence that is left out.",
        "Invoice INV-2026-0042 is wrong too.",
        subject="Where is my parcel?",
    )
    conv = dataclasses.replace(conv, assistant_answers=("“Shipping › Tracking your order”",))
    text = extractive_summary(conv)
    assert text.startswith("Subject: Where is my parcel?")
    assert "Request: my order 12345 did not arrive." in text
    assert "fourth sentence" not in text
    assert "order 12345" in text and "DHL-99887766" in text and "INV-2026-0042" in text
    assert "Assistant already answered: “Shipping › Tracking your order”" in text
    long = conversation("word " * 2000 + ".")
    assert len(extractive_summary(long)) <= 1000
    assert identifiers("see #123456") == ["#123456"]


# --------------------------------------------------------------------------- handoff comment


def test_handoff_comment_names_reason_sentiment_language_and_session():
    text = handoff_comment(
        EscalationFacts(
            conversation_id=42,
            reason='the customer asks for a person ("mit einem menschen")',
            sentiment=-0.05,
            sentiment_label="negative",
            language="de",
        )
    )
    assert 'Escalated: the customer asks for a person ("mit einem menschen")' in text
    assert "Sentiment: not assessed (de: the sentiment lexicon, VADER, is English only" in text
    assert "-0.05" not in text
    assert "Language: de (German)" in text
    assert "mail-gateway sessions show 42" in text
    english = handoff_comment(
        {"id": 3, "escalation_reason": "keyword", "sentiment": -0.42,
         "sentiment_label": "negative", "language": "en"}
    )  # fmt: skip
    assert "Sentiment: negative (-0.42)" in english and "not assessed" not in english
    assert "Language: en (English)" in english and "sessions show 3" in english


# --------------------------------------------------------------------------- config


def test_assistant_section_loads_and_checks_the_knowledge_folder(tmp_path):
    path = write_config(
        tmp_path,
        f'\n[assistant]\nbackend = "knowledge"\nknowledge_dir = "{KNOWLEDGE}"\n'
        'confidence = 0.5\ndebounce = 0.5\nhuman_phrases = ["person please"]\n',
    )
    s = load_settings(path, environ={"OPENAI_API_KEY": "sk-test"})
    assert s.assistant.backend == "knowledge" and s.assistant.knowledge_dir == KNOWLEDGE
    assert s.assistant.debounce == 0.5 and s.assistant.human_phrases == ["person please"]
    assert s.assistant.api_key == "sk-test" and "sk-test" not in repr(s.assistant)
    bad = write_config(
        tmp_path,
        '\n[assistant]\nbackend = "knowledge"\nknowledge_dir = "nowhere"\nconfidence = 2\n',
    )
    with pytest.raises(ConfigError) as err:
        load_settings(bad, environ={})
    problems = "\n".join(err.value.problems)
    assert "assistant.confidence: 2.0 must be at most 1" in problems


def test_knowledge_backend_needs_a_folder(tmp_path):
    bad = write_config(
        tmp_path, '\n[assistant]\nbackend = "knowledge"\nknowledge_dir = "nowhere"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(bad, environ={})
    assert "assistant.knowledge_dir" in "\n".join(err.value.problems)


# --------------------------------------------------------------------------- openai backend


def _completion(content: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
    }


@pytest.fixture
async def chat_server(aiohttp_server):
    """A local chat-completions endpoint; `answers` decides what it says next."""
    state = {"answer": None, "delay": 0.0, "requests": []}

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        state["requests"].append((request.headers.get("Authorization"), body))
        if state["delay"]:
            await asyncio.sleep(state["delay"])  # the subject: a slow model endpoint
        return web.json_response(_completion(state["answer"]))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    server = await aiohttp_server(app)
    state["base_url"] = str(server.make_url("/v1"))
    return state


def _openai_assistant(chat_server, kb, timeout: float = 2.0) -> Assistant:
    settings = dataclasses.replace(SETTINGS, backend="openai", timeout=timeout)
    client = OpenAIChatClient(chat_server["base_url"], "sk-local", timeout=timeout)
    return Assistant(settings, OpenAIBackend(client, model="test-model", kb=kb))


async def test_openai_reply(chat_server, kb):
    chat_server["answer"] = json.dumps(
        {
            "action": "reply",
            "reply_markdown": "Choose **Forgot password?** on the sign-in page.",
            "reason": "",
            "summary": "Customer asks how to reset the password.",
        }
    )
    d = await _openai_assistant(chat_server, kb).decide(conversation("How do I reset my password?"))
    assert d.action == REPLY and d.markdown.startswith("Choose **Forgot password?**")
    assert d.summary == "Customer asks how to reset the password."
    auth, body = chat_server["requests"][0]
    assert auth == "Bearer sk-local" and body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    prompt = body["messages"][1]["content"]
    assert "How do I reset my password?" in prompt and "Reset a forgotten password" in prompt


async def test_openai_escalation(chat_server, kb):
    chat_server["answer"] = json.dumps(
        {
            "action": "escalate",
            "reply_markdown": "",
            "reason": "needs the customer's order history",
            "summary": "Order 12345 missing.",
        }
    )
    d = await _openai_assistant(chat_server, kb).decide(conversation("Where is order 12345?"))
    assert d.action == ESCALATE
    assert d.reasons == ("assistant: needs the customer's order history",)
    assert d.summary == "Order 12345 missing."


async def test_openai_rules_escalate_but_keep_the_model_summary(chat_server, kb):
    chat_server["answer"] = json.dumps(
        {"action": "reply", "reply_markdown": "Sure!", "reason": "", "summary": "Wants a person."}
    )
    d = await _openai_assistant(chat_server, kb).decide(conversation("Can I talk to a human?"))
    assert d.action == ESCALATE and d.summary == "Wants a person."


async def test_openai_timeout_escalates(chat_server, kb):
    chat_server["answer"] = json.dumps({"action": "reply", "reply_markdown": "late", "summary": ""})
    chat_server["delay"] = 1.0
    d = await _openai_assistant(chat_server, kb, timeout=0.2).decide(
        conversation("How do I reset my password?")
    )
    assert d.action == ESCALATE and d.reasons == ("assistant backend timed out",)
    assert d.markdown == "" and d.summary.startswith("Subject:")  # extractive instead


@pytest.mark.parametrize(
    "content",
    [
        "Sure! To reset your password, click Forgot password.",  # prose, not JSON
        '{"action": "reply", "reply_markdown": ""}',  # a reply without text
        '{"action": "maybe", "reply_markdown": "x"}',
        '["reply"]',
    ],
)
async def test_openai_malformed_answer_escalates(chat_server, kb, content):
    chat_server["answer"] = content
    d = await _openai_assistant(chat_server, kb).decide(conversation("How do I reset my password?"))
    assert d.action == ESCALATE and d.reasons[0].startswith("assistant answer unusable"), d
    assert "reset your password" not in d.markdown


async def test_openai_http_error_escalates(aiohttp_server, kb):
    app = web.Application()
    app.router.add_post(
        "/v1/chat/completions", lambda r: web.json_response({"error": "boom"}, status=500)
    )
    server = await aiohttp_server(app)
    a = _openai_assistant({"base_url": str(server.make_url("/v1"))}, kb)
    d = await a.decide(conversation("How do I reset my password?"))
    assert d.action == ESCALATE and d.reasons[0].startswith("assistant backend failed (HTTP 500")


def test_parse_answer_accepts_a_fenced_json_block():
    d = parse_answer(_completion('```json\n{"action": "reply", "reply_markdown": "Hi"}\n```'))
    assert d.action == REPLY and d.markdown == "Hi"


@pytest.mark.parametrize(
    "text",
    [
        "This is terrible, I am really angry",
        "Thanks for the reply. This is terrible, I am really angry. Regards, Bob",
        "I ordered the blue jacket last week and it has not arrived.\nThis is frustrating!\n"
        "Could you check the tracking number? Thanks, I appreciate it.",
        "The app works. The export is broken again and I lost a day of work. Please fix it.",
    ],
)
def test_sentiment_by_sentence_scores_as_vader_does_in_one_pass(text):
    """Sentence by sentence (linear time), the valences add up to VADER's whole-text compound."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    whole = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    score, lbl = sentiment(text)
    assert abs(score - whole) < 0.12, (score, whole)  # "!" and "?" emphasis is per sentence
    assert lbl == label(whole)
