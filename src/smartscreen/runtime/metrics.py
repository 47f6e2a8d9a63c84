"""Prometheus metrics of the screening line (one registry per runtime, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


class LineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.parcels = Counter("smartscreen_parcels", "Parcels decided", ["line", "route"], registry=r)
        self.alarms = Counter("smartscreen_alarms", "Parcels diverted by the policy", ["line"], registry=r)
        self.fail_closed = Counter(
            "smartscreen_fail_closed", "Parcels diverted by a fault, by first reason", ["line", "reason"], registry=r
        )
        self.deadline_misses = Counter(
            "smartscreen_deadline_misses", "Decisions that missed the gate deadline", ["line"], registry=r
        )
        self.gate_status = Counter("smartscreen_gate_commands", "Gate command outcomes", ["line", "status"], registry=r)
        self.decision_latency = Histogram(
            "smartscreen_decision_latency_seconds",
            "Time from the scan completing to the gate command",
            ["line"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge("smartscreen_queue_depth", "Items waiting per stage queue", ["queue"], registry=r)
        self.stage_alive = Gauge(
            "smartscreen_stage_alive", "1 while a stage thread is making progress", ["stage"], registry=r
        )
        self.watchdog_trips = Counter("smartscreen_watchdog_trips", "Stages found stalled", ["stage"], registry=r)
        self.link_up = Gauge("smartscreen_link_up", "1 while a device link's heartbeat is alive", ["link"], registry=r)
        self.line_stop = Gauge(
            "smartscreen_line_stop", "1 when a line asks to be stopped (a stage keeps failing)", ["line"], registry=r
        )
        self.stage_cpu = Gauge("smartscreen_stage_cpu_seconds", "CPU time used per stage thread", ["stage"], registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
