# Every target sets up what it needs: a fresh clone only needs python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-packages js-packages test lint typecheck run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check calshare mailer inbox tests bench docs
	$(BIN)/ruff format --check calshare mailer inbox tests bench docs

typecheck: install
	$(BIN)/mypy

test: install system-packages js-packages lint typecheck
	$(BIN)/pytest -q

# `make run SMTP=127.0.0.1:2525`: the demo's answer instructions name the same port.
SMTP ?= 127.0.0.1:8025
LMTP ?= 127.0.0.1:8024
HTTP ?= 127.0.0.1:8080

run: install
	$(BIN)/calshare demo --smtp $(SMTP)
	$(BIN)/calshare serve --smtp $(SMTP) --lmtp $(LMTP) --http $(HTTP)

# Mozilla's ical.js, which tests/support/clients.py runs in node (v20) to read our .ics files,
# and axe-core, which tests/test_calpage_browser.py runs in chromium, at the versions
# tests/js/package-lock.json pins.
js-packages: tests/js/node_modules/.package-lock.json

tests/js/node_modules/.package-lock.json: tests/js/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/js --no-audit --no-fund; \
	else echo "npm is missing (install node 20 and npm): the ical.js tests will fail"; fi

# Debian packages the tests and benchmarks use: postfix (tests/test_postfix_lmtp.py runs
# a private instance and injects with its sendmail; bench/mail.py delivers to its
# smtp-sink; bench/inbox.py sends with its smtp-source), openssl (the outbox TLS tests),
# chromium (tests/test_snapshot_render.py lays snapshot mails out headless), chromium-driver
# (tests/test_calpage_browser.py drives chromium with Selenium: axe-core, keyboard), nginx-light
# (tests/test_publish_servers.py publishes to a private nginx with its dav module), libical
# for the system Python (gir1.2-ical-3.0, python3-gi: tests/support/clients.py reads .ics with it)
# spamassassin (tests/test_mail_clients.py scores every kind of mail with `spamassassin -L`)
# and zbar-tools (tests/test_subscribe.py reads the published page's QR code with zbarimg).
# Whatever is missing is installed when apt-get exists (as root, or with sudo), postfix
# preseeded to "No configuration": no main.cf is written, so the system's postfix service
# does not start. If that fails the tests that need them fail saying what is missing, and
# bench/mail.py falls back to an aiosmtpd sink.
POSTFIX_TOOLS := /usr/sbin/postfix /usr/sbin/sendmail /usr/sbin/smtp-source /usr/sbin/smtp-sink

system-packages:
	@missing=""; \
	for tool in $(POSTFIX_TOOLS); do [ -x $$tool ] || missing=" postfix"; done; \
	[ -x /usr/bin/openssl ] || missing="$$missing openssl"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	ls /usr/lib/*/girepository-1.0/ICalGLib-3.0.typelib >/dev/null 2>&1 \
		|| missing="$$missing gir1.2-ical-3.0"; \
	/usr/bin/python3 -c "import gi" 2>/dev/null || missing="$$missing python3-gi"; \
	[ -x /usr/bin/spamassassin ] || missing="$$missing spamassassin"; \
	[ -x /usr/bin/zbarimg ] || missing="$$missing zbar-tools"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		as_root=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		echo "installing$$missing (postfix unconfigured: its service does not start)"; \
		{ echo "postfix postfix/main_mailer_type select No configuration" \
			| $$as_root debconf-set-selections \
		&& $$as_root apt-get update \
		&& $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; } \
		|| echo "could not install$$missing; the tests that need it will fail"; \
	elif [ -n "$$missing" ]; then \
		echo "missing$$missing and no apt-get: the tests that need it will fail"; \
	fi

bench: install system-packages
	$(BIN)/python bench/run.py --sources
	$(BIN)/python bench/mail.py
	$(BIN)/python bench/inbox.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/snapshot.py
	$(BIN)/python bench/feeds.py
	$(BIN)/python bench/caldav_fetch.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/signin.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist tests/js/node_modules
