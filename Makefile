# Two commands: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench replicate figures clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,harness]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/interp demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=10 tests

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b $$([ $$b = bench/real_shapes.py ] && echo --quick) || exit 1; done

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

# README figures of the bundled model (one line per figure; no hub; each well under 2 minutes on the toy model).
figures: $(STAMP)
	$(BIN)/interp demo --out out/figures/demo && cp out/figures/demo/the_eiffel_tower_is_in_full_l2.png docs/img/eiffel_full_l2.png
	$(BIN)/interp knockout --prompts toy --limit 210 --out out/figures/knockout && cp out/figures/knockout/knockout.png docs/img/knockout_toy.png
	$(BIN)/interp mask-impact --prompt "The Eiffel Tower is in" --num-tokens 2 --out out/figures/eiffel.csv --html && $(BIN)/python -m devtools.screenshot out/figures/eiffel.html -o docs/img/viewer.png --state "layer=max&pos=max&x0=1"
