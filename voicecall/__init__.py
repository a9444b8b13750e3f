"""voicecall: outbound voice calls through eSMS.vn, placed exactly once by Dramatiq workers.

The ``voicecall`` package holds what the intake side (``producer``) and the sending side
(``worker``) share: settings, logging, the job contract, the Redis key layout and the job store.
The dependency points one way: ``producer`` and ``worker`` import ``voicecall``, never each other.
"""

__version__ = "0.1.0"
