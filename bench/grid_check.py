"""Topology check of 120,000 unit grids (10,000 m², 125 parents of 960): `.venv/bin/python bench/grid_check.py`."""

import time, numpy as np, shapely
from gis.gridops import unit_cells, UnitPlan
from gis.topology import check_children
# 120,000 unit grids of 10,000 m² in 125 communities of 960 each (3.2 km × 3 km blocks)
parents=[shapely.box(i*3200, j*3000, (i+1)*3200, (j+1)*3000) for i in range(25) for j in range(5)]
t=time.perf_counter(); fam=[unit_cells(p, UnitPlan(10_000, 0.3)) for p in parents]; gen=time.perf_counter()-t
n=sum(len(f) for f in fam)
best=1e9
for _ in range(3):
    t=time.perf_counter()
    reports=[check_children(p, f"320681100{k+1:03d}000", "section", f, [f"320681100{k+1:03d}{m + 1:03d}" for m in range(len(f))]) for k,(p,f) in enumerate(zip(parents,fam))]
    best=min(best,time.perf_counter()-t)
geo=sum(sum(v for kk,v in r.counts().items() if kk in ("gap","overlap","outside","invalid","sliver")) for r in reports)
print(f"unit grids {n}, generation {gen:.2f} s, check best of 3 {best:.2f} s, geometric problems {geo}")
