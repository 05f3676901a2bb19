"""Sentiment (VADER, a lexicon model) and language (py3langid) of a customer's mail.

VADER's lexicon is English: on other languages it mostly sees no words it knows and reports a
neutral score. `sentiment_reliable` says so, and the handoff comment repeats it, so a rep does
not read "neutral" on an angry German mail as calm.
"""

from __future__ import annotations

import functools
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
_RELIABLE = frozenset({"en"})
_WORD = re.compile(r"\w+", re.UNICODE)
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
    """(compound score, label) of the text."""
    text = (text or "").strip()
    if not text:
        return 0.0, NEUTRAL
    with _lock:  # the analyzer is not documented as thread-safe; it is fast anyway
        score = float(_analyzer().polarity_scores(text[:5000])["compound"])
    return round(score, 4), label(score)


def language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when it is too short to tell."""
    text = (text or "").strip()
    if len(_WORD.findall(text)) < 2:
        return ""
    with _lock:
        code, _prob = _identifier().classify(text[:5000])
    return str(code)


def analyse(text: str) -> Signals:
    score, lbl = sentiment(text)
    return Signals(score, lbl, language(text))


def sentiment_reliable(lang: str) -> bool:
    """VADER is an English lexicon: its score means little for other languages."""
    return lang in _RELIABLE


def language_name(lang: str) -> str:
    return LANGUAGE_NAMES.get(lang, lang or "unknown")
