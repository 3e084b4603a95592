"""Synthetic recordings with known content (bursts, silences, cuts, chat spikes), generated with
PyAV and numpy: for the tests, the demo and the benchmarks, so nothing is downloaded."""
