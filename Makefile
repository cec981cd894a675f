# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create .venv on first use, install leanconv with its extras, and re-use it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.leanconv-installed
EXTRAS := dev,compare,onnx,openvino,baselines
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Fashion-MNIST ships as a Debian package; install it when missing (as root), else say how.
data:
	@if [ -f $(FASHION_MNIST)/t10k-labels-idx1-ubyte.gz ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) && \
		echo "installed dataset-fashion-mnist"; \
	else \
		echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' or set LEANCONV_DATA"; \
	fi

# The main job: resnet20_cifar trained once per operator on Fashion-MNIST, accuracy next to
# measured cost (runs/compare-resnet20_cifar-quick/: results table and plots).
demo: $(STAMP) data
	$(VENV)/bin/leanconv compare --preset quick

test: $(STAMP) data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
