# stgs build. `make help` lists the targets.
#
# Variants build side by side: build/cuda (when nvcc is found), build/cpu (CUDA=0), build/asan (make asan).
# Header dependencies are tracked (-MMD), so editing a header rebuilds exactly what includes it.

SHELL := /bin/bash
.DEFAULT_GOAL := all

# ---- toolchain ------------------------------------------------------------------------------------
CXX       ?= g++
NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
ifeq ($(origin CUDA),undefined)
  CUDA := $(if $(NVCC),1,0)
endif
CUDA_ARCH ?= sm_90
ARCH_FLAGS ?= -march=native
JOBS ?= $(shell nproc)

ifeq ($(SANITIZE),1)
  VARIANT := asan
  CUDA := 0
else
  VARIANT := $(if $(filter 1,$(CUDA)),cuda,cpu)
endif
BUILD ?= build/$(VARIANT)

WARN     := -Wall -Wextra -Wno-unused-parameter
CPPFLAGS := -I. -MMD -MP
CXXFLAGS := -std=c++20 -O3 $(ARCH_FLAGS) -fopenmp $(WARN)
LDLIBS   := -fopenmp -lopenblas -lstb -lsndfile -lsamplerate -lfftw3f -lfftw3 -lpthread
NVFLAGS  := -std=c++20 -O3 -arch=$(CUDA_ARCH) -I. -MMD -MP -Xcompiler -fopenmp --expt-relaxed-constexpr

ifeq ($(SANITIZE),1)
  # -Wno-maybe-uninitialized: GCC 12 at -O1 reports false positives inside <regex>, which Catch2 uses.
  CXXFLAGS := -std=c++20 -O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fopenmp $(WARN) -Wno-maybe-uninitialized
  LDLIBS   += -fsanitize=address,undefined
endif

ifeq ($(CUDA),1)
  CPPFLAGS += -DSTGS_CUDA=1 -I$(CUDA_HOME)/include
  LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudnn -lnccl -lcudart
endif

# MPI (CPU ranks, NCCL bootstrap) when OpenMPI's wrapper is installed: its include and link flags, STGS_MPI=1.
# MPI=0 builds without it (distributed runs then need NCCL and STGS_NCCL_ID_FILE).
MPICXX ?= $(shell command -v mpicxx 2>/dev/null)
ifeq ($(origin MPI),undefined)
  MPI := $(if $(MPICXX),1,0)
endif
ifeq ($(MPI),1)
  # OMPI_SKIP_MPICXX: the C API only (OpenMPI's deprecated C++ bindings warn under -Wextra).
  CPPFLAGS += -DSTGS_MPI=1 -DOMPI_SKIP_MPICXX=1 $(shell $(MPICXX) --showme:compile)
  LDLIBS   += $(shell $(MPICXX) --showme:link)
endif

# ---- sources --------------------------------------------------------------------------------------
LIB_CPP := $(wildcard kernels/cpu/*.cpp) $(wildcard engine/*.cpp) $(wildcard engine/ops/*.cpp) \
           $(wildcard engine/nn/*.cpp) $(wildcard engine/optim/*.cpp) $(wildcard engine/io/*.cpp) \
           $(wildcard engine/distributed/*.cpp) \
           $(wildcard nas/*.cpp) $(wildcard data/*.cpp)
# apps/ support code (run directories, plots, ...) goes into the library too, so the tests can reach it;
# the subcommands (cmd_*.cpp), main (stgs.cpp) and the benchmark program stay out.
LIB_CPP += $(filter-out apps/stgs.cpp apps/cmd_%.cpp apps/bench%.cpp,$(wildcard apps/*.cpp))
ifeq ($(CUDA),1)
  LIB_CU := $(wildcard kernels/cuda/*.cu) $(wildcard engine/cuda/*.cu) $(wildcard engine/distributed/*.cu)
else
  LIB_CPP += engine/cuda/runtime_none.cpp
  LIB_CU :=
endif
TEST_CPP := $(wildcard tests/*.cpp)
ifeq ($(CUDA),1)
  TEST_CU := $(wildcard tests/cuda/*.cu)
endif

obj = $(patsubst %,$(BUILD)/obj/%.o,$(1))
LIB_OBJ  := $(call obj,$(LIB_CPP) $(LIB_CU))
TEST_OBJ := $(call obj,$(TEST_CPP) $(TEST_CU))

LIB   := $(BUILD)/libstgs.a
STGS  := $(BUILD)/stgs
TESTS := $(BUILD)/stgs_tests
BENCH := $(BUILD)/stgs_bench

# ---- targets --------------------------------------------------------------------------------------
.PHONY: all lib test asan bench deps gpu-check gpu-deps clean help search eval
all: $(STGS) $(TESTS) $(BENCH)
lib: $(LIB)

# GCC contracts a*b + c into an FMA by default in C++ when the target has one (-std=c++20 does not stop it);
# the optimizer updates, the random fills (lo + (hi - lo) * u) and the elementwise derivatives must round each
# operation on its own, like their CUDA twins (kernels/cuda/{optim,random,elementwise}.cu), so the two agree bitwise.
$(BUILD)/obj/kernels/cpu/optim.cpp.o $(BUILD)/obj/kernels/cpu/random.cpp.o $(BUILD)/obj/kernels/cpu/elementwise.cpp.o: CXXFLAGS += -ffp-contract=off

$(BUILD)/obj/%.cpp.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# The tests read committed fixtures (tests/ref/) wherever they are run from, and run the `stgs` binary.
$(TEST_OBJ): CPPFLAGS += -DSTGS_TEST_DATA='"$(CURDIR)/tests/ref"' -DSTGS_BINARY='"$(CURDIR)/$(STGS)"'

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(STGS): $(call obj,apps/stgs.cpp $(wildcard apps/cmd_*.cpp)) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH): $(call obj,apps/bench.cpp apps/bench_cuda.cpp apps/bench_models.cpp) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# The suite prints "N passed, N failed, N skipped" last; extra arguments go through TEST_ARGS.
test: $(TESTS) $(STGS)
	$(TESTS) $(TEST_ARGS)

# The CPU suite under AddressSanitizer and UBSan (own build directory, CUDA off).
asan:
	$(MAKE) --no-print-directory SANITIZE=1 -j$(JOBS) build/asan/stgs_tests build/asan/stgs build/asan/stgs_bench
	ASAN_OPTIONS=detect_leaks=1 build/asan/stgs_tests $(TEST_ARGS)

bench: $(BENCH)
	$(BENCH) $(BENCH_ARGS)

# Debian packages the project uses (DESIGN.md section 3). Quiet when everything is present.
DEBIAN_PACKAGES := g++ make pkg-config catch2 libopenblas-dev nlohmann-json3-dev libstb-dev libsndfile1-dev \
                   libsamplerate0-dev libfftw3-dev libopenmpi-dev openmpi-bin ffmpeg gnuplot-nox graphviz
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	missing=$$(echo $$missing); \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing Debian packages: $$missing"; \
	  echo "install them with: sudo apt-get install -y --no-install-recommends $$missing"; exit 1; \
	fi; \
	echo "installing: $$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null

# ---- the end-to-end pipeline on the synthetic set: make search, then make eval -------------------------
# synth and pretrain are skipped when their output exists (say so: their *_ARGS then do nothing), extract
# reuses an up-to-date cache, the search runs every time; WORK holds it all and must not contain spaces.
WORK ?= work
SYNTH_ARGS ?=
PRETRAIN_ARGS ?=
EXTRACT_ARGS ?=
SEARCH_ARGS ?=
EVAL_ARGS ?=
check-work = $(if $(word 2,$(WORK)),$(error WORK='$(WORK)' contains a space; give a path without spaces))
search: deps $(STGS)
	$(check-work)
	@mkdir -p $(WORK)/backbones
	@if [ -f $(WORK)/synth/manifest.csv ]; then echo "synth: $(WORK)/synth exists, kept (delete it to apply SYNTH_ARGS)"; \
	  else $(STGS) synth --out $(WORK)/synth --force $(SYNTH_ARGS); fi
	@for m in image audio; do if [ -f $(WORK)/backbones/$$m.safetensors ]; then \
	  echo "pretrain: $(WORK)/backbones/$$m.safetensors exists, kept (delete it to apply PRETRAIN_ARGS)"; \
	  else $(STGS) pretrain $(WORK)/synth/manifest.csv --modality $$m --out $(WORK)/backbones/$$m.safetensors \
	    $(PRETRAIN_ARGS) || exit 1; fi; done
	$(STGS) extract $(WORK)/synth/manifest.csv --image-backbone $(WORK)/backbones/image.safetensors \
	  --audio-backbone $(WORK)/backbones/audio.safetensors --out $(WORK)/features $(EXTRACT_ARGS)
	@echo "$(STGS) search $(WORK)/features --runs-dir $(WORK)/runs $(SEARCH_ARGS)"
	@out=$$(mktemp) && trap 'rm -f "$$out"' EXIT && set -o pipefail && \
	  $(STGS) search $(WORK)/features --runs-dir $(WORK)/runs $(SEARCH_ARGS) | tee "$$out" && \
	  run=$$(tail -n 1 "$$out") && \
	  if [ -f "$$run/genotype.json" ]; then echo "best genotype ($$run/genotype.json):"; cat "$$run/genotype.json"; fi

eval: $(STGS)
	$(check-work)
	$(STGS) eval --runs-dir $(WORK)/runs $(EVAL_ARGS)

# On a GPU machine: build for its architecture, test with CUDA, sanitize, benchmark; one log (.ci/gpu-check).
gpu-check:
	bash .ci/gpu-check

# Debian packages for building on a GPU machine that has no network; carry .gpu-deps/ there.
GPU_DEBS := catch2 libopenblas-dev libopenblas0 libopenblas0-pthread libopenblas-pthread-dev nlohmann-json3-dev libgfortran5 \
  libstb-dev libstb0 libsndfile1-dev libsndfile1 libsamplerate0-dev libsamplerate0 libfftw3-dev libfftw3-single3 \
  libfftw3-double3 libflac12 libmp3lame0 libmpg123-0 libogg0 libopus0 libvorbis0a libvorbisenc2 libquadmath0
gpu-deps:
	@mkdir -p .gpu-deps && cd .gpu-deps && apt-get download -qq $(GPU_DEBS) 2>/dev/null
	@ls .gpu-deps

clean:
	rm -rf build

help:
	@echo "make [all]     build $(BUILD)/{stgs,stgs_tests,stgs_bench} (CUDA=$(CUDA), nvcc: $(or $(NVCC),none))"
	@echo "make test      build and run the test suite (TEST_ARGS passes Catch2 filters)"
	@echo "make asan      run the CPU suite under AddressSanitizer + UBSan"
	@echo "make bench     kernel microbenchmarks (BENCH_ARGS for options)"
	@echo "make search    from nothing: synthetic set, pretrained backbones, feature cache, STGS search (in WORK=$(WORK))"
	@echo "make eval      train the last search's genotype from scratch and print the test table"
	@echo "make deps      install the Debian packages the project needs"
	@echo "make gpu-check on a GPU machine: build, test with CUDA, compute-sanitizer, bench; one log"
	@echo "make gpu-deps  fetch the build's Debian packages into .gpu-deps/ for a GPU machine without network"
	@echo "make CUDA=0    CPU-only build in build/cpu;  CUDA_ARCH=sm_90 picks the GPU architecture"

-include $(patsubst %.o,%.d,$(LIB_OBJ) $(TEST_OBJ) $(call obj,$(wildcard apps/*.cpp)))
