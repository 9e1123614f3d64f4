# Telcoflow — the two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak lint typecheck clean serve refsdk adkenv sysdeps proto redis

# System packages the tests drive as real peers: command:package (installed when missing);
# chromium: the console's browser tests drive Debian's build headless (Playwright, no download)
SYSDEPS := sipp:sip-tester baresip:baresip chromium:chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,fast,twilio,openai,gemini,whatsapp,quic,redis]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m telcoflow.cli.main demo --out out/demo

sysdeps:
	@missing=""; for dep in $(SYSDEPS); do \
	  command -v $${dep%%:*} >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (test peers)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; fi

# the scale-out tests use the real Redis on 127.0.0.1:6379 (DB 7, a key prefix per run):
# started here when none answers, installed first when missing
redis:
	@if ! (command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1); then \
	  command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server (test peer)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }; \
	  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; \
	    sleep 0.2; done; fi

test: $(STAMP) sysdeps adkenv redis
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
