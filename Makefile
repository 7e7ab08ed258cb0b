# sPAPR TCE tables for VFIO: a QEMU patch series and the tooling around it.
# 'make help' lists the targets.

B            := build
CACHE        := $(B)/cache
TREE         := $(B)/qemu
QEMU_BUILD   := $(B)/qemu-build
# Stock at the same relative path to its build as the series (../qemu), so
# that ccache finds what the series' build compiled alike.
STOCK_SRC    := $(B)/stock/qemu
STOCK_BUILD  := $(B)/stock/qemu-build
TARBALL      := $(CACHE)/qemu-orig.tar.xz
# The series, one directory per series and QEMU base, applied as one stack
# per base in the order series/order gives (scripts/series-lib.sh).
SERIES_ORDER := $(shell sed -e 's/\#.*//' series/order)
STACK10      := $(foreach s,$(SERIES_ORDER),series/$(s)/10.0)
STACK11      := $(foreach s,$(SERIES_ORDER),series/$(s)/11.1)
STAGE        := scripts/stage

# One compiler cache for every build of a run (scripts/configure-qemu.sh
# uses it when Debian's ccache is installed); paths under build/ hash as
# relative ones.
export CCACHE_DIR      := $(abspath $(B))/cache/ccache
export CCACHE_BASEDIR  := $(abspath $(B))
export CCACHE_NOHASHDIR := 1

# The QEMU qtests that guard what the series touches, and the series' own
# (qtest-ppc64 suite).
QTESTS       := device-plug-test rtas-test numa-test cpu-plug-test \
                drive_del-test qos-test spapr-tce-vfio-test
# The series' qtest gets the VFIO model from meson (QTEST_VFIO_MODEL).
MODEL_MODULE := tests/qtest/vfio-spapr-model/libvfio-spapr-model.so
QEMU_TARGETS := qemu-system-ppc64 qemu-img $(addprefix tests/qtest/,$(QTESTS)) \
                $(MODEL_MODULE)

.PHONY: all build deps fetch tree configure stock stock-hcall model check run bench post-dry-run \
        export export-check checkpatch check-bisect clean distclean help \
        fetch-11 tree-11 build-11 export-11 check-bisect-11

all: build

help:
	@echo 'make            install what is missing, fetch QEMU, apply the series, build'
	@echo 'make check      the same, then build stock QEMU and the port to QEMU 11.1, and'
	@echo '                run every test of both series'
	@echo 'make run        the same set-up as make, then the main job: a passthrough device'
	@echo '                plugged and unplugged, with the TCE tables and host state at each step'
	@echo 'make bench      hot-plug replay, TCE update and RSS scenarios, the series against'
	@echo '                stock 10.0.13 + the qtest hcall patch; CSV + PNG in $(B)/bench/'
	@echo '                (BENCH_HOST_PAGE=native: QEMU on this host'"'"'s 4 KiB pages, not 64 KiB)'
	@echo 'make stock-hcall  only build that baseline ($(STOCK_HCALL_BUILD))'
	@echo 'make bench-kvm  the same hotplug replay on real KVM + VFIO (the e2e set-up, trixie'
	@echo '                L1): series against stock, a table and $(B)/bench/kvm-replay.csv'
	@echo 'make check-e2e  the series (10.0.13 and 11.1.1) as L2 on real KVM + VFIO, nested in'
	@echo '                our L0 (TCG pseries): cross-builds for ppc64le, boots Debian kernels'
	@echo '                (E2E_BUILDS=series,stock,series-11 adds stock; E2E_CASES=1,2'
	@echo '                E2E_BUILDS=series E2E_SUITES=trixie to narrow it)'
	@echo 'make check-clean-room  make check + make run from a fresh clone of HEAD in fresh'
	@echo '                Debian 12 and 13 roots (debootstrap minbase + git + make; root;'
	@echo '                CLEAN_ROOM_RELEASES=trixie for one)'
	@echo 'make tree       only set up $(TREE): QEMU with the series as git commits'
	@echo 'make export     write the commits of $(TREE) back to series/*/10.0/'
	@echo 'make export-check  fail if $(TREE) or $(TREE11) holds work that is not in'
	@echo '                series/*/10.0/ or series/*/11.1/'
	@echo 'make checkpatch run QEMU'"'"'s scripts/checkpatch.pl over every patch (each series'
	@echo '                with its own QEMU'"'"'s)'
	@echo 'make build-11   QEMU 11.1 from Debian'"'"'s archive with series/*/11.1/ in'
	@echo '                $(TREE11), built in $(QEMU11_BUILD) (make tree-11: only the tree)'
	@echo 'make export-11  write the commits of $(TREE11) back to series/*/11.1/'
	@echo 'make post-dry-run  git send-email --dry-run of each series (git-email), Cc lists'
	@echo '                from QEMU'"'"'s scripts/get_maintainer.pl: who would get what'
	@echo 'make check-bisect  build and test every prefix of the series (check-bisect-11:'
	@echo '                of the port to 11.1)'
	@echo 'make check-asan the series'"'"' qtest on an ASan + UBSan build ($(B)/qemu-asan-build)'
	@echo 'make check-tsan the series'"'"' RCU reader case on a ThreadSanitizer build'
	@echo '                ($(B)/qemu-tsan-build): no data race in the sPAPR IOMMU code'
	@echo 'make check-reliability  check-hostile, check-migration, check-sweep, then the storm'
	@echo '                on the normal build (reliability/README.md; make check runs all'
	@echo '                four at reduced size; check-storm is the storm under ASan)'
	@echo 'make check-hostile  $(HOSTILE_CALLS) seeded hostile TCE hypercalls, without and with'
	@echo '                vfio-pci (the model): H_* codes, tables, host mappings, QEMU alive'
	@echo '                (HOSTILE_CALLS=N HOSTILE_SEED=S; the seed is printed)'
	@echo 'make check-migration  migration refused with vfio-pci, TCEs of both windows kept'
	@echo '                across a migration to a file, VFIO use on the destination'
	@echo 'make check-sweep  fault sweep: each failing kernel call of hotplug, unplug, DDW'
	@echo '                create/remove and system_reset in turn (the model'"'"'s fail points);'
	@echo '                QEMU refuses or survives cleanly, leaves nothing behind, plugs again'
	@echo 'make check-storm  $(STORM_CYCLES) random cycles of hotplug/unplug (two groups, two PHBs),'
	@echo '                DDW create/remove and system_reset per host flavour, on the ASan +'
	@echo '                UBSan build with the ASan model: no sanitizer report, tables unused,'
	@echo '                model empty, fds back (STORM_CYCLES=N STORM_SEED=S; seed printed)'
	@echo 'make clean      remove the build directories, keep the download cache'
	@echo 'make distclean  remove $(B)/ entirely'

deps:
	@$(STAGE) deps scripts/deps.sh

fetch: deps
	@$(STAGE) fetch scripts/fetch-qemu.sh $(CACHE)

tree: fetch
	@$(STAGE) apply scripts/apply-series.sh $(TARBALL) $(TREE) $(STACK10)

configure: tree
	@$(STAGE) configure scripts/configure-qemu.sh $(TREE) $(QEMU_BUILD)

build: configure
	@$(STAGE) build ninja -C $(QEMU_BUILD) $(QEMU_TARGETS)
	@mkdir -p $(B)/bin
	@ln -sfn ../qemu-build/qemu-system-ppc64 $(B)/bin/qemu-system-ppc64
	@$(STAGE) vfio-model $(MAKE) -s -C vfio-model O=$(abspath $(B))

# Stock QEMU from the same tarball, without the series: the tests and
# benchmarks compare against it.
stock: fetch
	@if [ ! -f $(STOCK_SRC)/VERSION ]; then \
	    mkdir -p $(STOCK_SRC) && tar -xf $(TARBALL) -C $(STOCK_SRC) --strip-components=1; fi
	@$(STAGE) configure-stock scripts/configure-qemu.sh $(STOCK_SRC) $(STOCK_BUILD)
	@$(STAGE) build-stock ninja -C $(STOCK_BUILD) qemu-system-ppc64
	@mkdir -p $(B)/bin
	@ln -sfn ../stock/qemu-build/qemu-system-ppc64 $(B)/bin/qemu-system-ppc64-stock

check: build stock build-11
	@$(STAGE) test scripts/run-tests.sh $(B) $(QTESTS)

# The series on the newest QEMU 11.x that Debian's archive serves
# (series/*/11.1/, what would be posted; series/*/10.0/ is its backport):
# the same patches, in the same order, with the same subjects
# (scripts/check-lockstep.py), built and tested next to 10.0.13.
TREE11       := $(B)/qemu-11
QEMU11_BUILD := $(B)/qemu-11-build
TARBALL11    := $(CACHE)/qemu11-orig.tar.xz
# qemu.qmp for QEMU 11's configure, unpacked from sid's python3-qemu-qmp
QEMU11_PY    := $(abspath $(CACHE))/qemu11-python/usr/lib/python3/dist-packages

fetch-11: deps
	@$(STAGE) fetch-11 scripts/fetch-qemu.sh $(CACHE) 11.1

tree-11: fetch-11
	@$(STAGE) apply-11 scripts/apply-series.sh $(TARBALL11) $(TREE11) $(STACK11)

build-11: tree-11
	@PYTHONPATH=$(QEMU11_PY) $(STAGE) configure-11 scripts/configure-qemu.sh \
	    $(TREE11) $(QEMU11_BUILD)
	@$(STAGE) build-11 ninja -C $(QEMU11_BUILD) $(QEMU_TARGETS)

export-11:
	@scripts/export-series.sh export $(TREE11) $(STACK11)

# The benchmark's baseline: stock plus only patch 4 (the qtest "hcall"
# command), since its scenarios put TCEs from qtest.
STOCK_HCALL_SRC   := $(B)/stock-hcall/qemu
STOCK_HCALL_BUILD := $(B)/stock-hcall/qemu-build
# (found by its subject, so that a renumbered series still finds it)
HCALL_PATCH       := $(wildcard series/*/10.0/*-spapr-Add-a-qtest-hcall-command-and-qtest_hcall.patch)

stock-hcall: fetch
	@$(STAGE) build-stock-hcall bench/stock-hcall.sh $(TARBALL) $(HCALL_PATCH) \
	    $(STOCK_HCALL_SRC) $(STOCK_HCALL_BUILD)
	@mkdir -p $(B)/bin
	@ln -sfn ../stock-hcall/qemu-build/qemu-system-ppc64 $(B)/bin/qemu-system-ppc64-stock-hcall

# QEMU takes its host page size from getpagesize(), and from it the host
# IOMMU page size of a window: e2e/pagesize.c makes it the 64 KiB of the
# powernv host the model stands for (BENCH_HOST_PAGE=native: x86's 4 KiB).
BENCH_HOST_PAGE ?= 64K
BENCH_SHIM := $(B)/bench/pagesize.so
$(BENCH_SHIM): e2e/pagesize.c
	@mkdir -p $(@D)
	cc -O2 -Wall -shared -fPIC -o $@ $<

bench: build stock-hcall $(if $(filter 64K,$(BENCH_HOST_PAGE)),$(BENCH_SHIM))
	@$(STAGE) bench-deps scripts/bench-deps.sh
	@python3 bench/bench.py --ours $(B)/bin/qemu-system-ppc64 \
	    --stock $(B)/bin/qemu-system-ppc64-stock-hcall \
	    --model $(B)/lib/libvfio-model.so --out $(B)/bench \
	    $(if $(filter 64K,$(BENCH_HOST_PAGE)),--page-shim $(BENCH_SHIM))

run: build
	@python3 run/tce-tables.py $(B)/bin/qemu-system-ppc64 $(B)/lib/libvfio-model.so

export:
	@scripts/export-series.sh export $(TREE) $(STACK10)

export-check:
	@scripts/export-series.sh check $(TREE) $(STACK10)
	@if [ -d $(TREE11)/.git ]; then scripts/export-series.sh check $(TREE11) $(STACK11); fi

checkpatch: tree tree-11
	@for d in $(STACK10); do scripts/checkpatch.sh $(TREE) $$d; done
	@for d in $(STACK11); do scripts/checkpatch.sh $(TREE11) $$d; done

# What posting would mail (git send-email --dry-run; nothing is sent): the
# 11.1 stack and its 10.0 backport to qemu-devel (the stable patches Cc
# qemu-stable through their trailers).
post-dry-run: tree tree-11
	@for d in $(STACK11); do scripts/post-dry-run.sh $(TREE11) $$d; done
	@for d in $(STACK10); do scripts/post-dry-run.sh $(TREE) $$d; done

check-bisect: fetch
	@scripts/check-bisect.sh $(B) $(TARBALL) $(QTESTS)

check-bisect-11: fetch-11
	@BISECT_PATCHES="$(STACK11)" BISECT_NAME=bisect-11 PYTHONPATH=$(QEMU11_PY) \
	    scripts/check-bisect.sh $(B) $(TARBALL11) $(QTESTS)

clean:
	@if [ -d $(TREE) ] && ! scripts/export-series.sh check $(TREE) $(STACK10) >/dev/null 2>&1; then \
	    echo "clean: $(TREE) holds work not in series/*/10.0/: run make export first" >&2; exit 1; fi
	@if [ -d $(TREE11) ] && ! scripts/export-series.sh check $(TREE11) $(STACK11) >/dev/null 2>&1; then \
	    echo "clean: $(TREE11) holds work not in series/*/11.1/: run make export-11 first" >&2; exit 1; fi
	rm -rf $(TREE) $(QEMU_BUILD) $(TREE11) $(QEMU11_BUILD) \
	    $(STOCK_SRC) $(STOCK_BUILD) $(B)/qemu-asan-build \
	    $(STOCK_HCALL_SRC) $(STOCK_HCALL_BUILD) $(B)/qemu-tsan-build \
	    $(B)/bin $(B)/lib $(B)/tests

distclean: clean
	rm -rf $(B)

# The series under AddressSanitizer and UBSan, in a build of its own: the
# series' qtest, with the model preloaded into a sanitized QEMU.
ASAN_BUILD := $(B)/qemu-asan-build
.PHONY: build-asan check-asan
build-asan: tree
	@$(STAGE) configure-asan scripts/configure-qemu.sh $(TREE) $(ASAN_BUILD) \
	    --enable-asan --enable-ubsan
	@$(STAGE) build-asan ninja -C $(ASAN_BUILD) qemu-system-ppc64 \
	    tests/qtest/spapr-tce-vfio-test $(MODEL_MODULE)

check-asan: build-asan
	@ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    meson test -C $(ASAN_BUILD) --no-rebuild --print-errorlogs \
	    qtest-ppc64/spapr-tce-vfio-test

# The series under ThreadSanitizer, in a build of its own: the qtest cases
# whose second thread reads TCE tables under RCU (scripts/check-tsan.sh).
TSAN_BUILD := $(B)/qemu-tsan-build
.PHONY: build-tsan check-tsan
build-tsan: tree
	@$(STAGE) configure-tsan scripts/configure-qemu.sh $(TREE) $(TSAN_BUILD) \
	    --enable-tsan
	@$(STAGE) build-tsan ninja -C $(TSAN_BUILD) qemu-system-ppc64

check-tsan: build build-tsan
	@scripts/check-tsan.sh $(TSAN_BUILD) $(QEMU_BUILD) rcu-reader

# End to end (e2e/README.md): the series and stock QEMU cross-built for
# ppc64le and run as L2 on a real kernel's KVM and VFIO, in a pseries L1
# nested in our own x86 qemu-system-ppc64 (L0). e2e-prepare is incremental.
# Stock runs every case too when named (E2E_BUILDS=series,stock,series-11:
# a third cross build and 20 minutes more); CI runs the series on both bases.
E2E_SUITES ?= trixie sid
E2E_CASES  ?= 1,2,2b,3,4,4h,5,6,7,dlpar,flip,ddw-restore,phb-unplug,stop-race,diff
E2E_BUILDS ?= series,series-11
.PHONY: e2e-prepare check-e2e bench-kvm
e2e-prepare: fetch
	@E2E_BUILDS=$(E2E_BUILDS) $(STAGE) e2e-prepare e2e/prepare.sh $(E2E_SUITES)

check-e2e: build e2e-prepare
	@python3 e2e/run.py --cases $(E2E_CASES) --builds $(E2E_BUILDS) \
	    --suites $(shell echo $(E2E_SUITES) | tr ' ' ,)

# The e2e's benchmark case: hotplug replay on real KVM and VFIO, the series
# against stock, alternating (e2e/README.md). Not a test; one L1 kernel.
bench-kvm: build
	@E2E_BUILDS=series,stock $(STAGE) e2e-prepare e2e/prepare.sh trixie
	@python3 e2e/run.py --cases bench,bench-move --builds series,stock --suites trixie

# The README's commands in fresh debootstrapped Debian roots (needs root; the
# bases are cached in $(B)/clean-room). Not part of CI.
CLEAN_ROOM_RELEASES ?= bookworm trixie
.PHONY: check-clean-room
check-clean-room:
	@scripts/clean-room.sh $(B) $(CLEAN_ROOM_RELEASES)

# Reliability (issue 11, reliability/README.md): hostile TCE hypercalls,
# migration and the fault sweep, at full size; make check runs them reduced
# (scripts/run-tests.sh).
HOSTILE_CALLS ?= 100000
HOSTILE_SEED  ?=
RELIABILITY_ARGS = --qemu $(B)/bin/qemu-system-ppc64 --model $(B)/lib/libvfio-model.so
.PHONY: check-hostile check-migration check-sweep check-reliability check-storm
check-hostile: build
	@python3 reliability/hostile.py --calls $(HOSTILE_CALLS) \
	    $(if $(HOSTILE_SEED),--seed $(HOSTILE_SEED)) $(RELIABILITY_ARGS)

check-migration: build
	@python3 reliability/migration.py --size full $(RELIABILITY_ARGS)

check-sweep: build
	@python3 reliability/sweep.py --size full $(RELIABILITY_ARGS)

check-reliability: build
	@rc=0; \
	python3 reliability/hostile.py --calls $(HOSTILE_CALLS) \
	    $(if $(HOSTILE_SEED),--seed $(HOSTILE_SEED)) $(RELIABILITY_ARGS) || rc=1; \
	python3 reliability/migration.py --size full $(RELIABILITY_ARGS) || rc=1; \
	python3 reliability/sweep.py --size full $(RELIABILITY_ARGS) || rc=1; \
	python3 reliability/storm.py $(STORM_ARGS) $(RELIABILITY_ARGS) || rc=1; \
	exit $$rc

# The storm (issue 11, part 3): STORM_CYCLES random operations per host
# flavour on the ASan + UBSan build of the series (build-asan above) with
# the model built under ASan + UBSan too (vfio-model/Makefile's check-asan
# library, against the ASan build's config). Not part of check-reliability,
# which runs the storm on the normal build; make check runs it reduced.
STORM_CYCLES ?= 500
STORM_SEED   ?=
STORM_ARGS    = --cycles $(STORM_CYCLES) $(if $(STORM_SEED),--seed $(STORM_SEED))
ASAN_MODEL   := $(abspath $(B))/asan/lib/libvfio-model.so
check-storm: build-asan
	@$(STAGE) asan-model $(MAKE) -s -C vfio-model O=$(abspath $(B)) \
	    QEMU_BUILD=$(abspath $(ASAN_BUILD)) $(ASAN_MODEL)
	@python3 reliability/storm.py $(STORM_ARGS) \
	    --qemu $(ASAN_BUILD)/qemu-system-ppc64 --model $(ASAN_MODEL)
