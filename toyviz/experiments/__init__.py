"""Work that trains, draws and reports at once: run folders filled with progress, sweeps over seeds and grids,
their reports, and the benchmarks."""
