# speechtok — all set-up is here; `make demo` and `make test` create or reuse the venv.
SHELL := /bin/bash
PYTHON_SYS ?= python3
LOCK := requirements.lock
LOCK_HASH := $(shell cat $(LOCK) 2>/dev/null | sha256sum | cut -c1-16)
VENV_ROOT ?= $(HOME)/.cache/speechtok/venvs
VENV := $(VENV_ROOT)/$(LOCK_HASH)
PY := .venv/bin/python
ONLY ?=
PYTEST_ARGS ?=
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/torchinductor
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup sysdeps demo test test-all bench lint clean-venv

## setup: idempotent; system packages, venv keyed by the lock's hash (outside the clone), .venv symlink
setup: sysdeps
	@if [ ! -f "$(VENV)/.complete" ]; then \
	  echo "speechtok: creating venv $(VENV) from $(LOCK) (first time: several minutes, torch is large)"; \
	  rm -rf "$(VENV)" && mkdir -p "$(VENV_ROOT)" && \
	  $(PYTHON_SYS) -m venv "$(VENV)" && \
	  "$(VENV)/bin/pip" install -q --no-deps -r $(LOCK) 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0 && \
	  touch "$(VENV)/.complete"; \
	fi
	@ln -sfn "$(VENV)" .venv
	@# The venv is shared by every clone with this lock: point it at this clone's sources
	@# (a .pth file and a console script; no build step, no network).
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  echo "$(CURDIR)" > "$$site/speechtok-src.pth"; \
	  printf '#!%s\nimport sys\nfrom speechtok.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n' "$(VENV)/bin/python" > "$(VENV)/bin/speechtok"; \
	  chmod +x "$(VENV)/bin/speechtok"
	@$(PY) -c "import speechtok"

sysdeps:
	@missing=""; for p in libsndfile1 espeak-ng sox; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "speechtok: installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: setup
	.venv/bin/speechtok demo -o demo-out

test: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench $(if $(ONLY),--only $(ONLY),)

lint: setup
	.venv/bin/ruff check speechtok tests bench
	.venv/bin/mypy speechtok

clean-venv:
	rm -rf "$(VENV)" .venv
