# Two commands for a fresh machine: `make demo` and `make test`. Each builds the venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Spark's Python workers must use the venv's interpreter, not whatever python3 is on PATH.
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export SPARK_LOCAL_IP := 127.0.0.1
SPARK_SUBMIT := $(VENV)/bin/spark-submit --master "local[*]" --properties-file conf/local.conf \
    --driver-java-options "-Dlog4j2.configurationFile=file:$(abspath conf/log4j2.properties)"
SAMPLE := data/mednist

.PHONY: demo test test-slow test-faults test-docs test-cluster test-clients venv clean bench package package-lambda test-compat

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-examples.txt requirements-cluster.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# MXNet's own RecordIO reader for the export tests, in a venv of its own (it needs numpy < 1.24).
MXNET := .venv-mxnet
$(MXNET)/.installed: requirements-mxnet.txt
	test -x $(MXNET)/bin/python || $(PYTHON) -m venv $(MXNET)
	$(MXNET)/bin/python -m pip install -q -r requirements-mxnet.txt
	touch $@

$(SAMPLE): | venv
	$(PY) scripts/make_sample.py $(SAMPLE)

# The whole chain in one application: split table, processed table, ImageFolder export.
demo: venv $(SAMPLE)
	$(SPARK_SUBMIT) jobs/pipeline.py --input $(SAMPLE) --output out/mednist \
	    --ratios 0.7,0.15,0.15 --seed 42 --size 64 --to imagefolder
	@$(PY) scripts/show_tree.py out/mednist/imagefolder
	@$(PY) scripts/show_planted.py $(SAMPLE) out/mednist
	@echo "tables: out/mednist/splits, out/mednist/processed; report: out/mednist/_run_report.json;"
	@echo "open out/mednist/report.html in a browser: counts, thumbnails, quarantine, near-duplicate leakage"

# The browser test needs Debian's chromium: installed here when missing (as root, or with sudo). Where it
# cannot be installed the test is skipped with a message; where it is installed, a missing browser fails.
test: venv $(MXNET)/.installed
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the report.html browser test"; \
	    $(if $(filter 0,$(shell id -u)),,sudo) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null' || echo "chromium could not be installed: the browser test will be skipped"; }
	$(VENV)/bin/vermin -t=3.9- --no-tips --violations -q lib jobs scripts
	SPARKPREP_REQUIRE_BROWSER=$$(command -v chromium >/dev/null && echo 1 || echo 0) SPARKPREP_REQUIRE_MXNET=1 \
	    SPARKPREP_REQUIRE_LAMBDA_PYTHON=1 \
	    $(PY) -m pytest -q tests -m "not slow" --ignore=tests/faults --ignore=tests/docs --ignore=tests/cluster \
	    --ignore=tests/clients

# The tests marked slow (pytest.ini): other formats and flags of what `make test` covers, kept out of its 10
# minutes. CI runs them after `make test`.
test-slow: venv $(MXNET)/.installed
	SPARKPREP_REQUIRE_MXNET=1 $(PY) -m pytest -q tests -m slow --ignore=tests/faults --ignore=tests/docs \
	    --ignore=tests/cluster --ignore=tests/clients

# The fault suite (docs/safety.md, Faults): real runs with killed workers, JVMs and drivers, speculation,
# concurrent runs and a full disk, each compared with a clean run. CI runs it after `make test`.
test-faults: venv
	$(PY) -m pytest -q tests/faults

# Every example the README and docs/ mark `<!-- runs -->`, through spark-submit on a fresh sample
# (tests/docs/test_examples.py), and the worked examples under examples/ end to end
# (tests/docs/test_worked_examples.py). CI runs it after `make test`.
test-docs: venv
	$(PY) -m pytest -q tests/docs

# split and preprocess on a real standalone cluster (a master and two one-core workers, separate JVMs,
# on 127.0.0.1) from the packaged bundle, rows equal to local[2]. CI runs it after `make test`.
test-cluster: venv
	$(PY) -m pytest -q tests/cluster

# The training frameworks' own loaders over the exports (torchvision, tf.data, Hugging Face datasets, MosaicML
# streaming), in venvs of their own: several GB (torch is a CUDA build on x86_64). CI runs it after the other suites.
CLIENTS := .venv-clients
# MosaicML streaming (the MDS export) in a venv of its own: it pins huggingface-hub below 1.0, datasets 5 needs 1.31+.
MDS := .venv-mds
# Each from its own requirements file: .venv-clients from requirements-clients.txt, .venv-mds from requirements-mds.txt.
.venv-%/.installed: requirements-%.txt
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q --upgrade pip
	.venv-$*/bin/python -m pip install -q -r $<
	touch $@

test-clients: venv $(CLIENTS)/.installed $(MDS)/.installed
	$(PY) -m pytest -q tests/clients

# What a cluster needs, in dist/bundle: library zip, jobs, conf profiles, EMR bootstrap.
package: venv
	$(VENV)/bin/sparkprep-package

# sparkprep.online as an AWS Lambda zip, in dist/lambda (docs/online.md).
package-lambda: venv
	$(VENV)/bin/sparkprep-package --lambda

# The integration tests on the clusters' floor: Python 3.9 and Spark 3.5 (EMR 7).
PYTHON39 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python3.9) python3.9)
COMPAT := .venv-compat
$(COMPAT)/.installed: requirements-compat.txt requirements-cluster.txt setup.py
	test -x $(COMPAT)/bin/python || $(PYTHON39) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q -r requirements-compat.txt
	$(COMPAT)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-compat: $(COMPAT)/.installed
	PYSPARK_PYTHON=$(abspath $(COMPAT)/bin/python) PYSPARK_DRIVER_PYTHON=$(abspath $(COMPAT)/bin/python) \
	    $(COMPAT)/bin/python -m pytest -q -p no:cacheprovider tests/integration tests/faults/test_task_retries.py tests/cluster \
	    tests/docs/test_worked_examples.py

# Benchmarks (not part of the test suite): the figures in docs/performance.md.
bench: venv
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) scripts/bench_split.py
	$(PY) scripts/bench_validation.py
	$(PY) scripts/bench_preprocess.py --marginal --repeat 3  # add --peers-python for Ray Data and Daft
	$(SPARK_SUBMIT) scripts/bench_readers.py bench/photos4500
	$(PY) scripts/bench_memory.py
	$(PY) scripts/bench_preprocess.py --images 8000 --only pipeline  # its table is what bench_export.py exports
	$(PY) scripts/bench_export.py
	$(PY) scripts/bench_features.py
	$(PY) scripts/bench_online.py

clean:
	rm -rf out dist $(SAMPLE) $(VENV) $(COMPAT) $(MXNET) $(CLIENTS)
