# Every target sets up what it needs: a fresh clone only needs python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check calshare mailer inbox tests bench
	$(BIN)/ruff format --check calshare mailer inbox tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

run: install
	$(BIN)/calshare demo
	$(BIN)/calshare serve --smtp 127.0.0.1:8025 --lmtp 127.0.0.1:8024

# bench/mail.py delivers to Postfix's smtp-sink. If it is missing, install Debian's postfix
# package (as root, or with sudo) preseeded to "No configuration": no main.cf is written, so
# the postfix service does not start. If that fails, bench/mail.py falls back to aiosmtpd.
bench: install
	$(BIN)/python bench/run.py
	@if [ ! -x /usr/sbin/smtp-sink ] && command -v apt-get >/dev/null; then \
		as_root=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		echo "installing postfix for /usr/sbin/smtp-sink (unconfigured, not started)"; \
		{ echo "postfix postfix/main_mailer_type select No configuration" \
			| $$as_root debconf-set-selections \
		&& $$as_root apt-get update \
		&& $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postfix; } \
		|| echo "could not install postfix; bench/mail.py will use an aiosmtpd sink"; \
	fi
	$(BIN)/python bench/mail.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
