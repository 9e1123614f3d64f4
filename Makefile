# Telcoflow — the two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak lint typecheck clean serve refsdk adkenv sysdeps proto

# System packages the tests drive as real peers: command:package (installed when missing);
# chromium: the console's browser tests drive Debian's build headless (Playwright, no download)
SYSDEPS := sipp:sip-tester baresip:baresip chromium:chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,fast,twilio,openai,gemini,whatsapp,quic]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m telcoflow.cli.main demo --out out/demo

sysdeps:
	@missing=""; for dep in $(SYSDEPS); do \
	  command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (test peers)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; fi

test: $(STAMP) sysdeps adkenv
	$(PY) -m pytest -q

refsdk: $(STAMP)  # the published SDK 1.0.0, isolated in .cache/ (tests and benches use it)
	$(PY) tests/refsdk.py

adkenv: $(STAMP)  # google-adk and the versions it pins, isolated in .cache/ (the ADK tests)
	@$(PY) tests/adkenv.py >/dev/null

bench: $(STAMP) sysdeps
	$(PY) bench/audio.py
	$(PY) bench/mixer.py
	$(PY) bench/rtp.py
	$(PY) bench/sip.py
	$(PY) bench/ai_turns.py

soak: $(STAMP) sysdeps  # the long runs: 30 min at 100 calls, 1 M inputs per parser
	mkdir -p out
	$(PY) bench/soak.py --json out/soak.json
	TELCOFLOW_FUZZ_PROFILE=soak $(PY) -m pytest -q tests/reliability

proto: $(STAMP)  # regenerate protocol/quic_pb2.py(i) after editing protocol/quic.proto
	$(PY) -m grpc_tools.protoc -I src --python_out=src --pyi_out=src src/telcoflow/protocol/quic.proto

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

serve: $(STAMP)
	$(PY) -m telcoflow.cli.main serve

clean:
	rm -rf $(VENV) out .cache .pytest_cache .mypy_cache .ruff_cache
