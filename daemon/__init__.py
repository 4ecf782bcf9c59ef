"""The hot-folder daemon, the job ledger and the `strata` command line."""
