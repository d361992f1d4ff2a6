"""The pure safety core: codecs, estimator, session, rules, alarms, the engine.

No I/O, no clock, nothing of the shell; time arrives with each reading and each tick. The
import contracts (``lint-imports``) keep it so.
"""
