"""What calshare says (mails, published pages, feeds), in each language we write.

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
        "invitation.intro": "{owner_who} would like to share the calendar “{calendar}” with you.",
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
        "level_changed.body": "{owner_who} changed what you see of the calendar “{calendar}” to “{level}”: {explanation}. Your subscription keeps working; it shows the new level from its next update.",
        "unshared.subject": "{owner} stopped sharing the calendar “{calendar}” with you",
        "unshared.heading": "Calendar no longer shared",
        "unshared.body": "{owner_who} no longer shares the calendar “{calendar}” with you. Any subscription to it has stopped working; you can remove it from your calendar app.",
        "welcome.subject": "You can now see the calendar “{calendar}” from {owner}",
        "welcome.heading": "The calendar is shared with you",
        "welcome.body": "You accepted {owner}'s invitation: {explanation}. Add the calendar “{calendar}” to your calendar app with the private link below (Outlook: Add calendar › From internet; Google Calendar: Other calendars › From URL; Apple Calendar: File › New Calendar Subscription). Keep the link to yourself: anyone who has it sees what you see.",
        "welcome.subscribe": "Subscribe",
        "welcome.https": "Link for calendar apps",
        "accepted.subject": "{invitee} accepted your calendar “{calendar}”",
        "accepted.heading": "Invitation accepted",
        "accepted.body": "{invitee} accepted your invitation to the calendar “{calendar}” and can now see it as “{level}”. You can stop sharing at any time with: calshare unshare {calendar} {invitee_address}",
        "declined.subject": "{invitee} declined your calendar “{calendar}”",
        "declined.heading": "Invitation declined",
        "declined.body": "{invitee} declined your invitation to the calendar “{calendar}”. Nothing is shared with them.",
        "answer_help.subject": "How to answer the invitation to “{calendar}”",
        "answer_help.heading": "We could not read your answer",
        "answer_help.body": "Thank you for answering {owner}'s invitation to the calendar “{calendar}”, but we could not tell whether you accept or decline. Use one of the buttons below, or reply with just the word “accept” or “decline” on the first line.",
        "invalid_token.subject": "This calendar invitation is no longer valid",
        "invalid_token.heading": "The invitation is no longer valid",
        "invalid_token.body": "The invitation you answered ({calendar}, from {owner}) {why}. Nothing was changed. {advice}",
        "invalid_token.expired": "has expired",
        "invalid_token.revoked": "was withdrawn or replaced by a newer one",
        "invalid_token.accepted": "was already accepted",
        "invalid_token.declined": "was already declined",
        "invalid_token.advice_expired": "If you still want to see the calendar, ask {owner} to share it with you again.",
        "invalid_token.advice_revoked": "If you still want to see the calendar, ask {owner} to share it with you again.",
        "invalid_token.advice_accepted": "The calendar is shared with you: subscribe with the private link in the mail that welcomed you.",
        "invalid_token.advice_declined": "If you have changed your mind, ask {owner} to share the calendar with you again.",
        "confirm.subject": "Did you answer the calendar invitation from {owner}?",
        "confirm.heading": "Please confirm your answer",
        "confirm.body": "An answer to {owner}'s invitation to the calendar “{calendar}” came from {forwarder}, not from your address, so nothing was changed. If it was you, answer with one of the buttons below from this address. If it was not you, you need not do anything.",
        "footer": "Sent by the calendar sharing service at {domain}. This is an automatic message.",
        "snapshot.subject": "Calendar “{calendar}” from {owner}: {range}",
        "snapshot.heading": "{calendar}",
        "snapshot.intro": "{owner_who} sent you a copy of the calendar “{calendar}” for {range}.",
        "snapshot.zone": "Times are in {zone}.",
        "snapshot.detail": "This copy shows {detail}.",
        "snapshot.detail.free-busy": "only when {owner} is busy, not what the events are",
        "snapshot.detail.titles": "the times, titles and locations of the events",
        "snapshot.detail.details": "all details of the events",
        "snapshot.private_left_out": "Items marked private are shown only as busy time.",
        "snapshot.working_hours": "Only working hours are shown ({hours}).",
        "snapshot.static": "This is a copy made on {date}: it does not change when the calendar does. Open the attached file {file} to add it to your calendar app as a separate calendar.",
        "snapshot.count": "Events in the attached calendar: {count}.",
        "snapshot.more": "Not listed here: {count} more. The attached calendar holds them all.",
        "snapshot.no_events": "No events",
        "snapshot.available": "Available",
        "snapshot.all_day": "All day",
        "snapshot.until": "until {time}",
        "snapshot.continues": "All day (continues)",
        "snapshot.private": "Private",
        "snapshot.nothing": "There are no events in this range.",
        "snapshot.by_month": "Events by month",
        "busy.busy": "Busy",
        "busy.tentative": "Tentative",
        "busy.oof": "Out of office",
        "busy.elsewhere": "Working elsewhere",
        "busy.free": "Free",
        "page.intro": "{owner_who} would like to share the calendar “{calendar}” with {invitee}.",
        "page.accepted_title": "Accepted",
        "page.accepted": "You accepted {owner}'s calendar “{calendar}”. A mail with your private subscription link is on its way.",
        "page.declined_title": "Declined",
        "page.declined": "You declined {owner}'s calendar “{calendar}”. {owner} has been told.",
        "page.closed_title": "This invitation can no longer be answered",
        "page.range": "Shown: {range}.",
        "page.subscribe": "Subscribe",
        "page.detail": "This page shows {detail}.",
        "page.service_footer": "The calendar sharing service at {domain}.",
        "page.footer": "Published with calshare at {domain}. Anyone with the link can see this page.",
        "page.download": "Download the .ics file",
        "page.view.month": "Month",
        "page.view.week": "Week",
        "page.view.agenda": "List",
        "page.views": "Views",
        "page.navigation": "Dates",
        "page.today": "Today",
        "page.week": "Week {number}",
        "page.time": "Time",
        "page.all_day_row": "All day",
        "page.more_day": "{count} more",
        "page.dst_forward": "23 hours: clocks go forward",
        "page.dst_back": "25 hours: clocks go back",
        "page.more": "Not listed here: {count} more. Subscribe to see them all.",
        "page.unknown_title": "Invitation not found",
        "page.unknown": "This link does not lead to an invitation. Check that the whole link from the mail was opened.",
        "pattern.day": "EEEE d MMMM",
        "pattern.short_day": "EEE d MMM",
        "pattern.month": "MMMM y",
    },
    "nb": {
        "invitation.subject": "{owner} har delt kalenderen «{calendar}» med deg",
        "invitation.heading": "Invitasjon til delt kalender",
        "invitation.intro": "{owner_who} vil dele kalenderen «{calendar}» med deg.",
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
        "level_changed.body": "{owner_who} har endret hva du ser av kalenderen «{calendar}» til «{level}»: {explanation}. Abonnementet ditt virker fortsatt og viser det nye nivået fra neste oppdatering.",
        "unshared.subject": "{owner} deler ikke lenger kalenderen «{calendar}» med deg",
        "unshared.heading": "Kalenderen deles ikke lenger",
        "unshared.body": "{owner_who} deler ikke lenger kalenderen «{calendar}» med deg. Abonnementet på den virker ikke lenger; du kan fjerne det fra kalenderprogrammet ditt.",
        "welcome.subject": "Nå kan du se kalenderen «{calendar}» fra {owner}",
        "welcome.heading": "Kalenderen er delt med deg",
        "welcome.body": "Du har godtatt invitasjonen fra {owner}: {explanation}. Legg kalenderen «{calendar}» til i kalenderprogrammet ditt med den private lenken under (Outlook: Legg til kalender › Fra Internett; Google Kalender: Andre kalendere › Fra nettadresse; Apple Kalender: Arkiv › Nytt kalenderabonnement). Hold lenken for deg selv: alle som har den, ser det du ser.",
        "welcome.subscribe": "Abonner",
        "welcome.https": "Lenke for kalenderprogrammer",
        "accepted.subject": "{invitee} har godtatt kalenderen «{calendar}»",
        "accepted.heading": "Invitasjonen er godtatt",
        "accepted.body": "{invitee} har godtatt invitasjonen til kalenderen «{calendar}» og kan nå se den som «{level}». Du kan slutte å dele når som helst med: calshare unshare {calendar} {invitee_address}",
        "declined.subject": "{invitee} har avslått kalenderen «{calendar}»",
        "declined.heading": "Invitasjonen er avslått",
        "declined.body": "{invitee} har avslått invitasjonen til kalenderen «{calendar}». Ingenting er delt med dem.",
        "answer_help.subject": "Slik svarer du på invitasjonen til «{calendar}»",
        "answer_help.heading": "Vi kunne ikke lese svaret ditt",
        "answer_help.body": "Takk for svaret på invitasjonen fra {owner} til kalenderen «{calendar}», men vi kunne ikke se om du godtar eller avslår. Bruk en av knappene under, eller svar med bare ordet «godta» eller «avslå» på første linje.",
        "invalid_token.subject": "Denne kalenderinvitasjonen gjelder ikke lenger",
        "invalid_token.heading": "Invitasjonen gjelder ikke lenger",
        "invalid_token.body": "Invitasjonen du svarte på ({calendar}, fra {owner}) {why}. Ingenting er endret. {advice}",
        "invalid_token.expired": "har gått ut på dato",
        "invalid_token.revoked": "er trukket tilbake eller erstattet av en nyere",
        "invalid_token.accepted": "er allerede godtatt",
        "invalid_token.declined": "er allerede avslått",
        "invalid_token.advice_expired": "Vil du fortsatt se kalenderen, kan du be {owner} om å dele den med deg igjen.",
        "invalid_token.advice_revoked": "Vil du fortsatt se kalenderen, kan du be {owner} om å dele den med deg igjen.",
        "invalid_token.advice_accepted": "Kalenderen er delt med deg: abonner med den private lenken i e-posten som ønsket deg velkommen.",
        "invalid_token.advice_declined": "Har du ombestemt deg, kan du be {owner} om å dele kalenderen med deg igjen.",
        "confirm.subject": "Svarte du på kalenderinvitasjonen fra {owner}?",
        "confirm.heading": "Bekreft svaret ditt",
        "confirm.body": "Et svar på invitasjonen fra {owner} til kalenderen «{calendar}» kom fra {forwarder}, ikke fra adressen din, så ingenting er endret. Var det deg, svarer du med en av knappene under fra denne adressen. Var det ikke deg, trenger du ikke gjøre noe.",
        "footer": "Sendt av kalenderdelingstjenesten på {domain}. Dette er en automatisk melding.",
        "snapshot.subject": "Kalenderen «{calendar}» fra {owner}: {range}",
        "snapshot.heading": "{calendar}",
        "snapshot.intro": "{owner_who} har sendt deg en kopi av kalenderen «{calendar}» for {range}.",
        "snapshot.zone": "Tidene er i {zone}.",
        "snapshot.detail": "Denne kopien viser {detail}.",
        "snapshot.detail.free-busy": "bare når {owner} er opptatt, ikke hva avtalene gjelder",
        "snapshot.detail.titles": "tidspunkt, titler og steder for avtalene",
        "snapshot.detail.details": "alle detaljer om avtalene",
        "snapshot.private_left_out": "Avtaler merket som private vises bare som opptatt tid.",
        "snapshot.working_hours": "Bare arbeidstiden vises ({hours}).",
        "snapshot.static": "Dette er en kopi laget {date}: den endres ikke når kalenderen endres. Åpne den vedlagte filen {file} for å legge den til i kalenderappen din som en egen kalender.",
        "snapshot.count": "Avtaler i den vedlagte kalenderen: {count}.",
        "snapshot.more": "Ikke vist her: {count} til. Den vedlagte kalenderen har alle.",
        "snapshot.no_events": "Ingen avtaler",
        "snapshot.available": "Ledig",
        "snapshot.all_day": "Hele dagen",
        "snapshot.until": "til {time}",
        "snapshot.continues": "Hele dagen (fortsetter)",
        "snapshot.private": "Privat",
        "snapshot.nothing": "Det er ingen avtaler i dette tidsrommet.",
        "snapshot.by_month": "Avtaler per måned",
        "busy.busy": "Opptatt",
        "busy.tentative": "Foreløpig",
        "busy.oof": "Ikke til stede",
        "busy.elsewhere": "Arbeider et annet sted",
        "busy.free": "Ledig",
        "page.intro": "{owner_who} vil dele kalenderen «{calendar}» med {invitee}.",
        "page.accepted_title": "Godtatt",
        "page.accepted": "Du godtok kalenderen «{calendar}» fra {owner}. En e-post med din private abonnementslenke er på vei.",
        "page.declined_title": "Avslått",
        "page.declined": "Du avslo kalenderen «{calendar}» fra {owner}. {owner} har fått beskjed.",
        "page.closed_title": "Denne invitasjonen kan ikke lenger besvares",
        "page.range": "Viser: {range}.",
        "page.subscribe": "Abonner",
        "page.detail": "Denne siden viser {detail}.",
        "page.service_footer": "Kalenderdelingstjenesten på {domain}.",
        "page.footer": "Publisert med calshare på {domain}. Alle som har lenken, kan se denne siden.",
        "page.download": "Last ned .ics-filen",
        "page.view.month": "Måned",
        "page.view.week": "Uke",
        "page.view.agenda": "Liste",
        "page.views": "Visninger",
        "page.navigation": "Datoer",
        "page.today": "I dag",
        "page.week": "Uke {number}",
        "page.time": "Tid",
        "page.all_day_row": "Hele dagen",
        "page.more_day": "{count} til",
        "page.dst_forward": "23 timer: klokken stilles fram",
        "page.dst_back": "25 timer: klokken stilles tilbake",
        "page.more": "Ikke vist her: {count} til. Abonner for å se alle.",
        "page.unknown_title": "Fant ikke invitasjonen",
        "page.unknown": "Denne lenken fører ikke til en invitasjon. Sjekk at hele lenken fra e-posten ble åpnet.",
        "pattern.day": "EEEE d. MMMM",
        "pattern.short_day": "EEE d. MMM",
        "pattern.month": "MMMM y",
    },
}


# Babel's locale per language: British English writes "Friday 26 March", as we do.
_LOCALES = {"en": "en_GB", "nb": "nb_NO"}


def babel_locale(lang: str) -> str:
    return _LOCALES[lang]


def who(name: str, address: str) -> str:
    """'Ann Demo (ann@example.org)', or just the address when there is no other name."""
    name = name.strip()
    return f"{name} ({address})" if name and name != address else address


def level_words(level: Level, lang: str) -> str:
    """Outlook's wording for a level, in the viewer's language."""
    return _LEVELS[lang][level]


def explanation(level: Level, lang: str, owner: str) -> str:
    return _EXPLAIN[lang][level].format(owner=owner)


def text(key: str, lang: str, **fields: str) -> str:
    return _TEXT[lang][key].format(**fields)


def keys(lang: str) -> set[str]:
    return set(_TEXT[lang])
