"""What our mails say, in each language we write.

Sentences live here, not in the templates: the templates are layout only, so
both languages share one HTML layout, and a test can check that every sentence
exists in every language. Placeholders are str.format fields.
"""

from __future__ import annotations

from calshare.levels import Level

LANGUAGES = ("en", "nb")

_LEVELS: dict[str, dict[Level, str]] = {
    "en": {
        Level.FREE_BUSY: "can view when I'm busy",
        Level.TITLES: "can view titles and locations",
        Level.DETAILS: "can view all details",
    },
    "nb": {
        Level.FREE_BUSY: "kan se når jeg er opptatt",
        Level.TITLES: "kan se titler og steder",
        Level.DETAILS: "kan se alle detaljer",
    },
}

# What a level means, said to the person who gets it.
_EXPLAIN: dict[str, dict[Level, str]] = {
    "en": {
        Level.FREE_BUSY: "you will see when {owner} is busy, not what the events are",
        Level.TITLES: "you will see the times, titles and locations of the events",
        Level.DETAILS: "you will see everything in the calendar except items marked private",
    },
    "nb": {
        Level.FREE_BUSY: "du ser når {owner} er opptatt, men ikke hva avtalene gjelder",
        Level.TITLES: "du ser tidspunkt, titler og steder for avtalene",
        Level.DETAILS: "du ser alt i kalenderen unntatt avtaler merket som private",
    },
}

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "invitation.subject": "{owner} shared the calendar “{calendar}” with you",
        "invitation.heading": "Calendar sharing invitation",
        "invitation.intro": "{owner} ({owner_address}) would like to share the calendar “{calendar}” with you.",
        "invitation.level": "Permission: {level} — {explanation}.",
        "invitation.message_from": "{owner} wrote:",
        "invitation.accept": "Accept",
        "invitation.decline": "Decline",
        "invitation.how": "Click Accept or Decline above: your mail program opens a new message; just send it. You can also reply to this mail with the word “accept” or “decline”, or answer on the web.",
        "invitation.how_text": "To accept, send an empty mail to:\n  {accept}\nTo decline, send an empty mail to:\n  {decline}\nOr reply to this mail with the word “accept” or “decline”.\nOr answer on the web:\n  {web}",
        "invitation.web": "Answer on the web",
        "invitation.after": "Once you accept, you get a private link that any calendar app (Outlook, Google Calendar, Apple Calendar, Thunderbird) can subscribe to.",
        "invitation.valid_until": "This invitation is valid until {date}.",
        "level_changed.subject": "{owner} changed your access to the calendar “{calendar}”",
        "level_changed.heading": "Your access has changed",
        "level_changed.body": "{owner} ({owner_address}) changed what you see of the calendar “{calendar}” to “{level}”: {explanation}. Your subscription keeps working; it shows the new level from its next update.",
        "unshared.subject": "{owner} stopped sharing the calendar “{calendar}” with you",
        "unshared.heading": "Calendar no longer shared",
        "unshared.body": "{owner} ({owner_address}) no longer shares the calendar “{calendar}” with you. Any subscription to it has stopped working; you can remove it from your calendar app.",
        "footer": "Sent by the calendar sharing service at {domain}. This is an automatic message.",
    },
    "nb": {
        "invitation.subject": "{owner} har delt kalenderen «{calendar}» med deg",
        "invitation.heading": "Invitasjon til delt kalender",
        "invitation.intro": "{owner} ({owner_address}) vil dele kalenderen «{calendar}» med deg.",
        "invitation.level": "Tilgang: {level} — {explanation}.",
        "invitation.message_from": "{owner} skrev:",
        "invitation.accept": "Godta",
        "invitation.decline": "Avslå",
        "invitation.how": "Trykk Godta eller Avslå over: e-postprogrammet ditt åpner en ny melding; bare send den. Du kan også svare på denne e-posten med ordet «godta» eller «avslå», eller svare på nettet.",
        "invitation.how_text": "For å godta, send en tom e-post til:\n  {accept}\nFor å avslå, send en tom e-post til:\n  {decline}\nEller svar på denne e-posten med ordet «godta» eller «avslå».\nEller svar på nettet:\n  {web}",
        "invitation.web": "Svar på nettet",
        "invitation.after": "Når du godtar, får du en privat lenke som alle kalenderprogrammer (Outlook, Google Kalender, Apple Kalender, Thunderbird) kan abonnere på.",
        "invitation.valid_until": "Invitasjonen gjelder til {date}.",
        "level_changed.subject": "{owner} har endret tilgangen din til kalenderen «{calendar}»",
        "level_changed.heading": "Tilgangen din er endret",
        "level_changed.body": "{owner} ({owner_address}) har endret hva du ser av kalenderen «{calendar}» til «{level}»: {explanation}. Abonnementet ditt virker fortsatt og viser det nye nivået fra neste oppdatering.",
        "unshared.subject": "{owner} deler ikke lenger kalenderen «{calendar}» med deg",
        "unshared.heading": "Kalenderen deles ikke lenger",
        "unshared.body": "{owner} ({owner_address}) deler ikke lenger kalenderen «{calendar}» med deg. Abonnementet på den virker ikke lenger; du kan fjerne det fra kalenderprogrammet ditt.",
        "footer": "Sendt av kalenderdelingstjenesten på {domain}. Dette er en automatisk melding.",
    },
}


def level_words(level: Level, lang: str) -> str:
    """Outlook's wording for a level, in the viewer's language."""
    return _LEVELS[lang][level]


def explanation(level: Level, lang: str, owner: str) -> str:
    return _EXPLAIN[lang][level].format(owner=owner)


def text(key: str, lang: str, **fields: str) -> str:
    return _TEXT[lang][key].format(**fields)


def keys(lang: str) -> set[str]:
    return set(_TEXT[lang])
