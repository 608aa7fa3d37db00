"""Ray: the session a sweep runs on (session.py), the trial actor (trial_actor.py), the pool that lends
actors to a sweep's tasks (pool.py), actors kept warm between sweeps (warm.py), and every patch of Ray's
internals (ray_patches.py, checked against the Ray version it was written for)."""
