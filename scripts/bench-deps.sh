#!/usr/bin/env bash
# Debian packages for `make bench` only (not for make check or CI): gnuplot
# draws its PNG plot.
exec "$(dirname "$0")/install-packages.sh" bench-deps gnuplot-nox
