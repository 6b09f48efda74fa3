import time

_t = time.perf_counter()
while time.perf_counter() - _t < 0.02:  # 20 ms of the function's own init
    pass
VALUE = 1
