# The README's commands. Every target creates/updates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# On 2 shared cores a busy-waiting OpenMP pool made a training step ~15x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test test-fast docs lint bench clean ffmpeg-libs

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -c 'from avssl.cli.trainer import cache_help; cache_help()'  # the trainer commands' --help, kept so it starts without torch
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	rm -rf runs/demo runs/demo_linear
	$(BIN)/avssl fit --config configs/simclr.yaml --config configs/demo.yaml
	$(BIN)/avssl test --config configs/linear.yaml --config configs/demo_linear.yaml \
		--model.encoder_ckpt runs/demo/checkpoints/last.ckpt

# FFmpeg's shared libraries, which the torchcodec backend loads (its tests run in every `make test`)
FFMPEG_LIBS := libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8

ffmpeg-libs:
	@ldconfig -p | grep -q 'libavcodec\.so\.' || { \
		command -v apt-get >/dev/null || { echo "install FFmpeg's shared libraries (4 to 8), e.g. the ffmpeg package" >&2; exit 1; }; \
		echo "installing FFmpeg's shared libraries (apt-get)"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends $(FFMPEG_LIBS) >/dev/null; }

test: $(VENV)/.installed ffmpeg-libs
	$(BIN)/python -m pytest

# everything not marked slow (the demo's learning claim, the wheel, torch.compile): for iterating
test-fast: $(VENV)/.installed ffmpeg-libs
	$(BIN)/python -m pytest -m "not slow"

docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(VENV)/.installed
	$(BIN)/ruff check avssl tests benchmarks
	$(BIN)/ruff format --check avssl tests benchmarks

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/augment.py

clean:
	rm -rf runs site $(VENV) *.egg-info .pytest_cache
