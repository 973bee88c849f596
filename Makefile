# Two commands: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench replicate clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/interp demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=10 tests

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# The toy replication of the prefill-mask ablation: stages 1 → 2 → 3a (causal control) → 3b → 4 → report.
replicate: $(STAMP)
	rm -rf runs/replicate
	$(BIN)/interp stage run 1 --runs-dir runs/replicate
	$(BIN)/interp stage run 2 --runs-dir runs/replicate
	$(BIN)/interp stage run 3a --runs-dir runs/replicate
	$(BIN)/interp stage run 3b --runs-dir runs/replicate
	$(BIN)/interp stage run 4 --runs-dir runs/replicate
	$(BIN)/interp stage report --runs-dir runs/replicate --out docs/replication
	$(BIN)/python -m interp.data.toy.targets docs/replication
