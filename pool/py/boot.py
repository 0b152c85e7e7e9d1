# Start-up code run in every interpreter, in a private namespace (interp.c):
# puts the configured paths first on sys.path; on 3.12 sub-interpreters,
# makes decimal and datetime use their pure-Python versions (the C ones
# corrupt the heap there, PLATFORM.md); and installs the waits that a
# cancel of the request (a caller's timeout) ends with KeyboardInterrupt,
# where CPython's own would only see it once they return (sleep.h, lock.h).
import sys


def _boot(paths, guard, sleep, lock):
    for p in reversed([p for p in paths.split('\n') if p]):
        if p not in sys.path:
            sys.path.insert(0, p)
    if guard:
        class _PureDecimalDatetime:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name in ('_decimal', '_datetime'):
                    raise ModuleNotFoundError(name, name=name)
                return None
        sys.meta_path.insert(0, _PureDecimalDatetime)
    # time.sleep, and `from time import sleep` from now on
    import time
    time.sleep = sleep
    _cancellable_condition_waits(lock)


def _cancellable_condition_waits(lock):
    '''threading.Lock, and the lock that threading.Condition.wait makes
    with threading._allocate_lock, become lock, whose wait a cancel ends:
    so do Lock.acquire and Event.wait, queue.Queue.get and put, Semaphore,
    Barrier and concurrent.futures' waits, which all wait in
    Condition.wait. threading is patched when it is first imported, not
    imported here (a few ms per interpreter). RLock, and _thread's locks
    (import locks among them), stay CPython's.'''
    def patch(module):
        module._allocate_lock = module.Lock = lock

    if 'threading' in sys.modules:
        patch(sys.modules['threading'])
        return

    class _PatchThreading:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != 'threading':
                return None
            sys.meta_path.remove(_PatchThreading)  # once is enough
            for finder in sys.meta_path:
                find = getattr(finder, 'find_spec', None)
                spec = find(name, path, target) if find is not None else None
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or isinstance(spec.loader, type):
                return spec  # a loader shared by other modules: left alone
            exec_module = spec.loader.exec_module  # the spec's own loader

            def exec_and_patch(module):
                exec_module(module)
                patch(module)
            spec.loader.exec_module = exec_and_patch
            return spec

    sys.meta_path.insert(0, _PatchThreading)
