"""The benchmarks' library: data, server, runs, verification and report, shared by the scripts in
bench/. Imports point one way: the scripts import this package, never each other, and nothing in
this package imports a script."""
