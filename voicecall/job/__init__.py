"""The job itself: its words (kinds, states, outcomes), what a producer may ask for, the
record the store keeps, its Redis keys and index places, and every step of its life.

Nothing here talks to Redis: an operation of :mod:`voicecall.job.lifecycle` is a value
(:class:`~voicecall.job.steps.Op`) that the store (voicecall.store) runs.
"""
