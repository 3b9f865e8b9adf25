# Two entry points: `make quickstart` (set up, run the quickstart notebook) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

.PHONY: setup quickstart test bench lab
setup: $(STAMP)

quickstart: $(STAMP)
	mkdir -p build
	cd notebooks && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.store_widget_state=False \
		quickstart.ipynb --output-dir ../build --output quickstart.ipynb
	$(BIN)/nbtrack runs --store notebooks/.nbtrack-quickstart/runs.duckdb
	@echo "executed notebook: build/quickstart.ipynb (to open it in JupyterLab: make lab)"

test: $(STAMP)
	npm test --silent
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval-sanitize.cfg tests notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab
	cd notebooks && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/jupyter lab quickstart.ipynb
