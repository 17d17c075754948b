"""distributed_model.py - the scaling tables of docs/distributed.md: a ring allreduce's time per step on a
network of a given speed, against the compute per step measured on this machine, and the efficiency that
predicts at 2 to 64 nodes. Standard library only; the inputs are the measured numbers below (one process,
one thread, batch 64; see docs/distributed.md for how they were taken).

    python3 bench/distributed_model.py
"""

# Per step at batch 64, one thread: forward and backward (split across the processes), and the optimizer's
# update (every process does all of it).
NETWORKS = {
    "MLP 784-512-256-10": {"params": 535818, "fb_ms": 0.82, "update_ms": 0.14},
    "CNN conv32-conv64-fc128": {"params": 421642, "fb_ms": 9.6, "update_ms": 0.3},
}
# Link speed and per-hop latency: TCP over Ethernet at 10 and 25 Gb/s, RDMA at 100 Gb/s.
LINKS = {"10 Gb/s": (1.25e9, 10e-6), "25 Gb/s": (3.125e9, 10e-6), "100 Gb/s": (12.5e9, 3e-6)}
NODES = (2, 4, 8, 16, 32, 64)


def ring_ms(nbytes, nodes, bandwidth, latency):
    """A ring allreduce: 2 (p - 1) / p of the buffer crosses every link, in 2 (p - 1) steps."""
    return 1e3 * (2 * (nodes - 1) / nodes * nbytes / bandwidth + 2 * (nodes - 1) * latency)


def table(title, cell):
    print(f"\n{title}\n")
    print("| network | link | " + " | ".join(f"{n} nodes" for n in NODES) + " |")
    print("|---|---|" + "---|" * len(NODES))
    for name, net in NETWORKS.items():
        for link, (bw, lat) in LINKS.items():
            print(f"| {name} | {link} | " + " | ".join(cell(net, n, bw, lat) for n in NODES) + " |")


def main():
    table("Allreduce per step (ms)", lambda net, n, bw, lat: f"{ring_ms(4 * net['params'], n, bw, lat):.2f}")

    def weak(net, n, bw, lat):  # 64 samples per node: the global batch grows with the nodes
        step = net["fb_ms"] + net["update_ms"]
        return f"{step / (step + ring_ms(4 * net['params'], n, bw, lat)):.0%}"

    table("Efficiency, 64 samples per node (weak scaling)", weak)

    def strong(net, n, bw, lat):  # a global batch of 256 shared by the nodes
        one = 4 * net["fb_ms"] + net["update_ms"]
        per = 4 * net["fb_ms"] / n + net["update_ms"] + ring_ms(4 * net["params"], n, bw, lat)
        return f"{one / (n * per):.0%}"

    table("Efficiency, a global batch of 256 (strong scaling)", strong)


if __name__ == "__main__":
    main()
