"""``chaosmoose gameday``: run a plan of experiments as one session, with a live view,
observer notes, a halt on Ctrl-C that undoes every fault, one consolidated report and a
resilience score."""
