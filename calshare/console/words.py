"""What the owner console says, in English and Norwegian Bokmål.

The console's sentences, apart from the mails' (``calshare.wording``): the templates
are layout only, and ``tests/test_console_words.py`` checks that every key exists in
both languages and that both give the same placeholders. Levels are said in Outlook's
words, from ``calshare.wording``, so a mail and a page never name a level differently.
"""

from __future__ import annotations

from typing import Any

from calshare import wording
from calshare.levels import Level

LANGUAGES = ("en", "nb")

# Each page's sentences under its own prefix; keep each page's block together.
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        # --- layout (base)
        "brand": "calshare",
        "nav.label": "Main",
        "nav.calendars": "My calendars",
        "nav.add": "Add calendar",
        "nav.signout": "Sign out",
        "nav.signed_in_as": "Signed in as {owner}",
        "language.switch": "English",
        "tabs.label": "Calendar",
        "tab.share": "Share",
        "tab.people": "People",
        "tab.publish": "Publish",
        "tab.email": "E-mail calendar",
        "tab.history": "History",
        "footer": "calshare: calendar sharing by email.",
        "copy": "Copy",
        "copied": "Copied",
        # --- signin
        "signin.title": "Sign in",
        "signin.intro": "Type your email address and we send you a link that signs you in. There is no password to remember.",
        "signin.address": "Email address",
        "signin.submit": "Send me a link",
        "signin.sent": "If {address} may sign in, a link is on its way; it works once, for 15 minutes.",
        "signin.sent_hint": "Open the mail and press Sign in on the page its link opens. No mail after a few minutes? Look in the spam folder, or ask again.",
        "signin.bad_address": "“{address}” is not an email address; type one like name@example.org.",
        "signin.form_expired": "This form has expired or did not come from calshare; nothing was sent. Try again.",
        "signin.link_title": "Sign in to calshare",
        "signin.link_intro": "Press the button to sign in as {address}.",
        "signin.link_button": "Sign in",
        "signin.link_gone_title": "This link no longer works",
        "signin.link_gone": "This sign-in link was already used, has expired (a link works for 15 minutes), or was not opened whole. Ask for a new one.",
        "signin.link_expired_form": "This page has expired or did not come from calshare; open the link in the mail again.",
        "signin.ask_again": "Ask for a new link",
        "done.signed_out": "You are signed out.",
        # --- calendars (My calendars, Add calendar)
        # --- share and people
        # --- publish
        "publish.title": "Publish {calendar}",
        "publish.intro": "Publishing gives two links anyone can open without signing in: a web page and an ICS file calendar apps subscribe to.",
        "publish.heading": "Publish this calendar",
        "publish.again_heading": "Reset links",
        "publish.reset_hint": "New links replace the old ones, which stop working at once. You can change the level and the WebDAV folder here too.",
        "publish.level": "Permissions",
        "publish.webdav": "WebDAV folder (optional)",
        "publish.webdav_hint": "calshare also writes the calendar there as NAME.ics and NAME.html, and again after each import. A plain WebDAV folder, not a CalDAV calendar.",
        "publish.publish": "Publish",
        "publish.reset": "Reset links",
        "publish.links_heading": "Your links",
        "publish.made": "Published at “{level}”. Anyone with these links can see it.",
        "publish.capped": "Policy allows publishing at “{level}” at most; published at that.",
        "publish.note_now": "Note these links now: calshare keeps only a hash of them and cannot show them again.",
        "publish.copy_label": "Copy: {what}",
        "publish.link_html": "Web page (HTML)",
        "publish.link_ics": "ICS file",
        "publish.link_subscribe": "Subscribe in a calendar app",
        "publish.webdav_written": "Also written to WebDAV:",
        "publish.status": "Published at “{level}” since {since}.",
        "publish.hash_only": "calshare keeps only a hash of the links, so they were shown once, when you published. Lost them? Reset links gives new ones; the old ones stop working.",
        "publish.webdav_folder": "A copy is also written to the WebDAV folder {folder}",
        "publish.stop_heading": "Stop publishing",
        "publish.push_hint": "If the WebDAV server refused the copy, write it again once that is fixed; the links stay.",
        "publish.push": "Write the WebDAV copy again",
        "publish.unpublish_hint": "Both links stop working at once, and the copy on WebDAV is deleted.",
        "publish.unpublish": "Unpublish",
        "publish.off": "Publishing is turned off on this server.",
        "publish.bad_action": "That is not a button of this page; nothing was changed.",
        "publish.bad_level": "Choose a level from the list ({levels}); nothing was published.",
        "publish.bad_webdav": "The WebDAV folder must be an address starting with https:// or http://; nothing was published.",
        "done.unpublished": "Unpublished: its links no longer work.",
        "done.webdav_pushed": "The WebDAV copy was written again; the links are unchanged.",
        # --- email
        "email.title": "E-mail {calendar}",
        "email.intro": "Send a copy of a date range by e-mail: a schedule in the mail and an .ics file attached. Each recipient gets at most what policy allows them.",
        "email.to": "To",
        "email.to_hint": "Separate addresses with commas or new lines.",
        "email.range": "Date range",
        "email.range.today": "Today",
        "email.range.tomorrow": "Tomorrow",
        "email.range.next-7-days": "Next 7 days",
        "email.range.next-30-days": "Next 30 days",
        "email.range.whole": "Whole calendar",
        "email.range.dates": "Specify dates",
        "email.dates_legend": "Specify dates",
        "email.first": "Start",
        "email.last": "End",
        "email.detail": "Detail",
        "email.detail_hint": "Lowered for a recipient whom policy allows less.",
        "email.working_hours": "Show time within my working hours only",
        "email.include_private": "Include details of items marked private",
        "email.layout": "E-mail layout",
        "email.layout.daily": "Daily schedule",
        "email.layout.list": "List of events",
        "email.preview": "Preview",
        "email.send": "Send",
        "email.preview_heading": "Preview",
        "email.preview_hint": "This is the mail exactly as it will be sent, one to each recipient; nothing has been sent yet.",
        "email.preview_from": "From",
        "email.preview_to": "To",
        "email.preview_subject": "Subject",
        "email.preview_level": "Detail",
        "email.preview_range": "Dates",
        "email.preview_attached": "Attached",
        "email.preview_frame": "The mail: {subject}",
        "email.preview_text": "Text version of the mail",
        "email.capped": "policy allows no more",
        "email.events": "{count} events",
        "email.sent_one": "Sent: the mail is in the outbox.",
        "email.sent_many": "Sent: {count} mails are in the outbox, one per recipient.",
        "email.bad_action": "That is not a button of this page; nothing was sent.",
        "email.bad_range": "Choose a date range from the list; nothing was sent.",
        "email.dates_missing": "Specify dates needs both a start and an end date; nothing was sent.",
        "email.dates_bad": "Write the dates as YYYY-MM-DD; nothing was sent.",
        "email.bad_detail": "Choose a detail from the list; nothing was sent.",
        "email.bad_layout": "Choose a layout from the list; nothing was sent.",
        "email.no_recipients": "Name at least one recipient in To; nothing was sent.",
        # --- history
    },
    "nb": {
        # --- layout (base)
        "brand": "calshare",
        "nav.label": "Hovedmeny",
        "nav.calendars": "Mine kalendere",
        "nav.add": "Legg til kalender",
        "nav.signout": "Logg ut",
        "nav.signed_in_as": "Logget inn som {owner}",
        "language.switch": "Norsk (bokmål)",
        "tabs.label": "Kalender",
        "tab.share": "Del",
        "tab.people": "Personer",
        "tab.publish": "Publiser",
        "tab.email": "Send kalender på e-post",
        "tab.history": "Historikk",
        "footer": "calshare: kalenderdeling på e-post.",
        "copy": "Kopier",
        "copied": "Kopiert",
        # --- signin
        "signin.title": "Logg inn",
        "signin.intro": "Skriv e-postadressen din, så sender vi deg en lenke som logger deg inn. Det er ikke noe passord å huske.",
        "signin.address": "E-postadresse",
        "signin.submit": "Send meg en lenke",
        "signin.sent": "Hvis {address} kan logge inn, er en lenke på vei; den virker én gang, i 15 minutter.",
        "signin.sent_hint": "Åpne e-posten og trykk Logg inn på siden lenken åpner. Ingen e-post etter noen minutter? Se i søppelpostmappen, eller be om en ny.",
        "signin.bad_address": "«{address}» er ikke en e-postadresse; skriv en som navn@example.org.",
        "signin.form_expired": "Dette skjemaet er utløpt eller kom ikke fra calshare; ingenting ble sendt. Prøv igjen.",
        "signin.link_title": "Logg inn på calshare",
        "signin.link_intro": "Trykk på knappen for å logge inn som {address}.",
        "signin.link_button": "Logg inn",
        "signin.link_gone_title": "Denne lenken virker ikke lenger",
        "signin.link_gone": "Denne innloggingslenken er allerede brukt, er utløpt (en lenke virker i 15 minutter), eller ble ikke åpnet hel. Be om en ny.",
        "signin.link_expired_form": "Denne siden er utløpt eller kom ikke fra calshare; åpne lenken i e-posten på nytt.",
        "signin.ask_again": "Be om en ny lenke",
        "done.signed_out": "Du er logget ut.",
        # --- calendars (My calendars, Add calendar)
        # --- share and people
        # --- publish
        "publish.title": "Publiser {calendar}",
        "publish.intro": "Når du publiserer, får du to lenker alle kan åpne uten å logge inn: en nettside og en ICS-fil som kalenderapper kan abonnere på.",
        "publish.heading": "Publiser denne kalenderen",
        "publish.again_heading": "Tilbakestill lenker",
        "publish.reset_hint": "Nye lenker erstatter de gamle, som slutter å virke med en gang. Her kan du også endre nivået og WebDAV-mappen.",
        "publish.level": "Tillatelser",
        "publish.webdav": "WebDAV-mappe (valgfritt)",
        "publish.webdav_hint": "calshare skriver også kalenderen dit som NAVN.ics og NAVN.html, og på nytt etter hver import. En vanlig WebDAV-mappe, ikke en CalDAV-kalender.",
        "publish.publish": "Publiser",
        "publish.reset": "Tilbakestill lenker",
        "publish.links_heading": "Lenkene dine",
        "publish.made": "Publisert med «{level}». Alle som har disse lenkene, kan se den.",
        "publish.capped": "Reglene tillater publisering med høyst «{level}»; publisert med det.",
        "publish.note_now": "Noter lenkene nå: calshare tar bare vare på en hash av dem og kan ikke vise dem igjen.",
        "publish.copy_label": "Kopier: {what}",
        "publish.link_html": "Nettside (HTML)",
        "publish.link_ics": "ICS-fil",
        "publish.link_subscribe": "Abonner i en kalenderapp",
        "publish.webdav_written": "Også skrevet til WebDAV:",
        "publish.status": "Publisert med «{level}» siden {since}.",
        "publish.hash_only": "calshare tar bare vare på en hash av lenkene, så de ble vist én gang, da du publiserte. Mistet dem? Tilbakestill lenker gir nye; de gamle slutter å virke.",
        "publish.webdav_folder": "En kopi skrives også til WebDAV-mappen {folder}",
        "publish.stop_heading": "Slutt å publisere",
        "publish.push_hint": "Hvis WebDAV-serveren avviste kopien, skriv den på nytt når det er rettet; lenkene blir de samme.",
        "publish.push": "Skriv WebDAV-kopien på nytt",
        "publish.unpublish_hint": "Begge lenkene slutter å virke med en gang, og kopien på WebDAV slettes.",
        "publish.unpublish": "Avpubliser",
        "publish.off": "Publisering er slått av på denne serveren.",
        "publish.bad_action": "Det er ikke en knapp på denne siden; ingenting ble endret.",
        "publish.bad_level": "Velg et nivå fra listen ({levels}); ingenting ble publisert.",
        "publish.bad_webdav": "WebDAV-mappen må være en adresse som begynner med https:// eller http://; ingenting ble publisert.",
        "done.unpublished": "Avpublisert: lenkene virker ikke lenger.",
        "done.webdav_pushed": "WebDAV-kopien ble skrevet på nytt; lenkene er de samme.",
        # --- email
        "email.title": "Send {calendar} på e-post",
        "email.intro": "Send en kopi av et datoområde på e-post: en timeplan i e-posten og en .ics-fil som vedlegg. Hver mottaker får høyst det reglene tillater for dem.",
        "email.to": "Til",
        "email.to_hint": "Skill adressene med komma eller linjeskift.",
        "email.range": "Datoområde",
        "email.range.today": "I dag",
        "email.range.tomorrow": "I morgen",
        "email.range.next-7-days": "Neste 7 dager",
        "email.range.next-30-days": "Neste 30 dager",
        "email.range.whole": "Hele kalenderen",
        "email.range.dates": "Angi datoer",
        "email.dates_legend": "Angi datoer",
        "email.first": "Start",
        "email.last": "Slutt",
        "email.detail": "Detaljer",
        "email.detail_hint": "Senkes for en mottaker som reglene tillater mindre.",
        "email.working_hours": "Vis bare tid innenfor arbeidstiden min",
        "email.include_private": "Ta med detaljer for elementer merket som private",
        "email.layout": "E-postoppsett",
        "email.layout.daily": "Dagsplan",
        "email.layout.list": "Liste over hendelser",
        "email.preview": "Forhåndsvis",
        "email.send": "Send",
        "email.preview_heading": "Forhåndsvisning",
        "email.preview_hint": "Slik blir e-posten sendt, én til hver mottaker; ingenting er sendt ennå.",
        "email.preview_from": "Fra",
        "email.preview_to": "Til",
        "email.preview_subject": "Emne",
        "email.preview_level": "Detaljer",
        "email.preview_range": "Datoer",
        "email.preview_attached": "Vedlegg",
        "email.preview_frame": "E-posten: {subject}",
        "email.preview_text": "Tekstversjonen av e-posten",
        "email.capped": "reglene tillater ikke mer",
        "email.events": "{count} hendelser",
        "email.sent_one": "Sendt: e-posten ligger i utboksen.",
        "email.sent_many": "Sendt: {count} e-poster ligger i utboksen, én per mottaker.",
        "email.bad_action": "Det er ikke en knapp på denne siden; ingenting ble sendt.",
        "email.bad_range": "Velg et datoområde fra listen; ingenting ble sendt.",
        "email.dates_missing": "Angi datoer trenger både en startdato og en sluttdato; ingenting ble sendt.",
        "email.dates_bad": "Skriv datoene som ÅÅÅÅ-MM-DD; ingenting ble sendt.",
        "email.bad_detail": "Velg detaljer fra listen; ingenting ble sendt.",
        "email.bad_layout": "Velg et oppsett fra listen; ingenting ble sendt.",
        "email.no_recipients": "Skriv minst én mottaker i Til; ingenting ble sendt.",
        # --- history
    },
}


def text(key: str, lang: str, **fields: Any) -> str:
    return _TEXT[lang][key].format(**fields)


def has(key: str, lang: str) -> bool:
    return key in _TEXT[lang]


def keys(lang: str) -> set[str]:
    return set(_TEXT[lang])


def level(value: Level, lang: str) -> str:
    """Outlook's words for a level, capitalised as a drop-down shows them."""
    words = wording.level_words(value, lang)
    return words[:1].upper() + words[1:]
