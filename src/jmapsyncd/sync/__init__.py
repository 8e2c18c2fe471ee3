"""Synchronisation between a JMAP account and the vdir.

Promise: :mod:`jmapsyncd.sync.plan` decides (purely); the engine that carries the plan out lives
beside it and is the only part that talks to both the client and the store.
"""
