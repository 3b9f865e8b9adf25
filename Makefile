# Two entry points: `make quickstart` (set up, run the quickstart notebook) and `make test`.
# .venv holds the test tools and the team extra (DuckDB 1.5.5 with its DuckLake/PostgreSQL extensions);
# .venv-latest holds the newest DuckDB without the extra, which a plain `pip install nbtrack` gets.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LATEST := .venv-latest
LATEST_STAMP := $(LATEST)/.installed-stamp

$(STAMP): pyproject.toml package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,team]"
	touch $(STAMP)

# the front end: `pip install -e .` builds it once; a change to js/ after that is built here, or the tests
# would drive the old bundle (seen: a browser test failing on a panel the page could not read)
BUNDLE := src/nbtrack/static/compare.js
$(BUNDLE): $(STAMP) $(wildcard js/*.js js/*.css) js/build.mjs package.json
	npm run build --silent
	touch $(BUNDLE)

$(LATEST_STAMP): pyproject.toml package.json $(STAMP)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e ".[test]" duckdb
	touch $(LATEST_STAMP)

# notebooks the project did not write, for the transparency test: nbclient's test notebooks, from its
# sdist on PyPI, pinned by version and hash
CORPUS := build/corpus/nbclient
CORPUS_SDIST := nbclient-0.10.2.tar.gz
CORPUS_SHA256 := 90b7fc6b810630db87a6d0c2250b1f0ab4cf4d3c27a299b0cde78a4ed3fd9193

$(CORPUS)/.stamp: $(STAMP)
	rm -rf build/corpus && mkdir -p build/corpus
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: --dest build/corpus nbclient==0.10.2
	echo "$(CORPUS_SHA256)  build/corpus/$(CORPUS_SDIST)" | sha256sum --check --quiet
	mkdir -p $(CORPUS)
	tar -xzf build/corpus/$(CORPUS_SDIST) -C $(CORPUS) --strip-components=3 nbclient-0.10.2/tests/files
	touch $@

.PHONY: setup quickstart test test-fast test-latest bench bench-team bench-scale bench-panel lab corpus screenshot
corpus: $(CORPUS)/.stamp

setup: $(STAMP)

quickstart: $(STAMP) $(BUNDLE)
	mkdir -p build
	cd notebooks && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.store_widget_state=False \
		quickstart.ipynb --output-dir ../build --output quickstart.ipynb
	$(BIN)/nbtrack runs --store notebooks/.nbtrack-quickstart/runs.duckdb
	@echo "executed notebook: build/quickstart.ipynb (to open it in JupyterLab: make lab)"

test: $(STAMP) $(BUNDLE) $(CORPUS)/.stamp
	npm test --silent
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval-sanitize.cfg tests notebooks
	$(MAKE) test-latest

# the inner loop: no real kernels, browsers or many processes (the `slow` marker); the slowest listed
test-fast: $(STAMP) $(BUNDLE)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" --durations=15 tests

# the store, recorder, CLI and panels once more on the newest DuckDB (the browser and team tests ran above)
test-latest: $(LATEST_STAMP)
	PATH="$(abspath $(LATEST)/bin):$$PATH" $(LATEST)/bin/python -m pytest -q -p no:cacheprovider \
		--ignore tests/test_browser.py --ignore tests/test_team.py --ignore tests/test_team_s3.py \
		--ignore tests/test_corpus.py tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# the README's picture of the panel, as the browser test last drew it
screenshot: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_browser.py -k "not team"
	cp build/test-artifacts/compare-panel-readme.png docs/panel.png

bench-team: $(STAMP)
	$(BIN)/python benchmarks/team.py

# a million runs and a billion points: about 20 minutes and 17 GB under $$TMPDIR (or /tmp) the first time
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

# the panel on 100,000 and 1,000,000 runs: kernel side, then drawn in JupyterLab by the browser test
SCALE_DIR := $(or $(TMPDIR),/tmp)/nbtrack-scale
bench-panel: $(STAMP)
	$(BIN)/python benchmarks/scale.py --only panel
	NBTRACK_E2E_BIG_STORE=$(SCALE_DIR)/runs-1000000-100x2000.duckdb PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/test_browser.py -k panel_in_jupyterlab

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet jupyterlab
	cd notebooks && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/jupyter lab quickstart.ipynb
