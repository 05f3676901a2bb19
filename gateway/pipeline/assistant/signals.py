"""Sentiment (VADER, a lexicon model) and language (py3langid) of a customer's mail.

VADER's lexicon is English: on other languages it mostly sees no words it knows, and the few it
does know mislead it (the German article "die" reads as negative, so a neutral German question
scored as negative and was escalated). The score is therefore used only where it means
something: `sentiment_reliable(language)` is true for English alone, and the language is only
named when py3langid is confident enough (`MIN_LANGUAGE_CONFIDENCE`); otherwise it is "" and the
sentiment is "not assessed". The escalation rule (rules.py) and the handoff comment read it.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass

POSITIVE = "positive"
NEUTRAL = "neutral"
NEGATIVE = "negative"

# VADER's own convention for the compound score
_POSITIVE_FROM = 0.05
_NEGATIVE_FROM = -0.05

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "ru": "Russian",
    "tr": "Turkish",
    "ja": "Japanese",
    "zh": "Chinese",
}
_RELIABLE = frozenset({"en"})  # the languages VADER's lexicon covers
# py3langid's normalised probability below which the language is not named: short texts such as
# "refund now" (en 0.21) or "Danke, super" (eo 0.08) are guesses; "This is terrible." is en 0.36
MIN_LANGUAGE_CONFIDENCE = 0.3
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_VADER_ALPHA = 15.0  # vaderSentiment.normalize's alpha
_lock = threading.Lock()


@dataclass(frozen=True)
class Signals:
    sentiment: float  # VADER compound, -1 (very negative) .. 1 (very positive)
    sentiment_label: str  # positive | neutral | negative
    language: str  # ISO 639-1, "" when the text is too short to tell


def label(score: float) -> str:
    if score >= _POSITIVE_FROM:
        return POSITIVE
    if score <= _NEGATIVE_FROM:
        return NEGATIVE
    return NEUTRAL


@functools.cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    load = getattr(LanguageIdentifier, "from_model_file", None)  # 0.4; older: from_pickled_model
    if load is None:
        load = LanguageIdentifier.from_pickled_model
    return load(MODEL_FILE, norm_probs=True)


def sentiment(text: str) -> tuple[float, str]:
    """(compound score, label) of the text: VADER's compound, -1 .. 1.

    VADER's cost grows with the square of the text's length (16 ms of CPU for 5,000
    characters, about as much as the rest of processing a mail together), so it scores each
    sentence, as its README advises for longer texts, and adds the sentences' valences back into
    one compound with VADER's own normalisation, compound = x / sqrt(x² + 15): a single sentence
    scores exactly as before, several add up as they would in one pass (only the cross-sentence
    "but" and punctuation emphasis are per sentence now).
    """
    text = (text or "").strip()
    if not text:
        return 0.0, NEUTRAL
    total = 0.0
    with _lock:  # the analyzer is not documented as thread-safe
        analyzer = _analyzer()
        for part in _SENTENCE_END.split(text[:5000]):
            if part.strip():
                total += _valence(float(analyzer.polarity_scores(part)["compound"]))
    score = total / math.sqrt(total * total + _VADER_ALPHA)
    return round(score, 4), label(score)


def _valence(compound: float) -> float:
    """The summed valence x that VADER normalised into `compound` (the inverse of
    x / sqrt(x² + alpha)); compound is clamped short of ±1, where the inverse diverges."""
    c = max(-0.9999, min(0.9999, compound))
    return c * math.sqrt(_VADER_ALPHA) / math.sqrt(1 - c * c)


def language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when it is too short or too uncertain to
    tell (fewer than 2 words, or a probability below MIN_LANGUAGE_CONFIDENCE)."""
    text = (text or "").strip()
    if len(_WORD.findall(text)) < 2:
        return ""
    with _lock:
        code, prob = _identifier().classify(text[:5000])
    return str(code) if prob >= MIN_LANGUAGE_CONFIDENCE else ""


def analyse(text: str) -> Signals:
    score, lbl = sentiment(text)
    return Signals(score, lbl, language(text))


def sentiment_reliable(lang: str) -> bool:
    """VADER is an English lexicon: its score means little for other languages, or when the
    language could not be told ("")."""
    return lang in _RELIABLE


def language_name(lang: str) -> str:
    return LANGUAGE_NAMES.get(lang, lang or "unknown")
