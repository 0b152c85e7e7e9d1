# The sidecar's time.sleep and threading's lock behave as CPython's: the
# differences between them, as a list (empty when there are none). Run as
# an exec; leaves `differences`.
import _thread
import copy
import decimal
import fractions
import importlib.machinery
import importlib.util
import pickle
import threading
import time
import weakref

spec = importlib.machinery.BuiltinImporter.find_spec('time')
cpython_time = importlib.util.module_from_spec(spec)  # a fresh copy of the module
spec.loader.exec_module(cpython_time)


class Index:
    def __index__(self):
        return 0


class Float:
    def __float__(self):
        return 0.0


def outcome(f, *args, **kwargs):
    try:
        return repr(f(*args, **kwargs))
    except BaseException as e:  # OverflowError's wording changes between versions
        return type(e).__name__ + ('' if isinstance(e, OverflowError) else ': ' + str(e))


differences = []
for v in [-1, -0.5, -1e-10, float('nan'), float('inf'), 10**30, 1e300, 'x', None, decimal.Decimal('0.001'),
          fractions.Fraction(1, 1000), Float(), Index(), False, -0.0, 0, 0.001]:
    ours, theirs = outcome(time.sleep, v), outcome(cpython_time.sleep, v)
    if ours != theirs:
        differences.append(('sleep', repr(v), ours, theirs))
if time.sleep is cpython_time.sleep or time.sleep.__module__ != 'time' or time.sleep.__name__ != 'sleep':
    differences.append(('sleep', 'identity', time.sleep))


def type_only(f, *args, **kwargs):
    try:
        return repr(f(*args, **kwargs))
    except Exception as e:  # the wording of argument errors changes between versions
        return type(e).__name__


def lock_script(lock):
    a = lock()
    steps = [
        lambda: a.acquire(False, 1),
        lambda: a.acquire(timeout=-2),
        lambda: a.acquire(timeout='x'),
        lambda: a.release(),
        lambda: a.locked(),
        lambda: a.acquire(),
        lambda: a.locked(),
        lambda: a.acquire(False),
        lambda: a.acquire(timeout=0),
        lambda: a.acquire(True, 0.01),
        lambda: a.acquire(blocking=False),
        lambda: a.release(),
        lambda: a.acquire(True, -1),
        lambda: a.release(),
        lambda: a.acquire(timeout=10**30),
        lambda: a.__enter__(),
        lambda: a.__exit__(None, None, None),
        lambda: repr(a).split()[0],
        lambda: a.acquire(blocking=[]),
        lambda: a.acquire(timeout=0.001, blocking=1),
        lambda: a.release(),
        lambda: type_only(a.acquire, 1, 2, 3),
        lambda: type_only(a.acquire, nope=1),
        lambda: type_only(a.acquire, True, blocking=True),
        lambda: weakref.ref(a)() is a,
        lambda: type_only(pickle.dumps, a),
        lambda: type_only(copy.copy, a),
    ]
    return [outcome(s) for s in steps]


ours, theirs = lock_script(threading._allocate_lock), lock_script(_thread.allocate_lock)
if threading._allocate_lock is _thread.allocate_lock or threading.Lock is not threading._allocate_lock:
    differences.append(('lock', 'not installed'))
for i, (o, t) in enumerate(zip(ours, theirs)):
    if o != t:
        differences.append(('lock', i, o, t))
