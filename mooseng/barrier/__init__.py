"""Reply barrier for a MooseFS leader (prototype, see docs/reply-barrier.md).

``tap``: a follower-side extra metalogger that persists the leader's changelog stream in a
file ``mfsmaster -a`` can merge, and acknowledges the highest contiguous change it holds.
``proxy``: a TCP proxy in front of mfsmaster's client port that holds every reply until
some follower has acknowledged the changes that existed when the reply was produced.
"""
