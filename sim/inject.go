package sim

import "chronik/disk"

// startFault begins fault i of the schedule. Faults after the heal, or that find their
// target already down, do nothing (the trace says so).
func (s *Sim) startFault(i int) {
	f := s.schedule[i]
	tl := s.tr.line(s.now, "sim", "fault").i("i", int64(i)).s("f", f.String())
	n := s.nodes[f.Node%len(s.nodes)]
	if s.healed {
		tl.s("skip", "healed").end()
		return
	}
	tl.end()
	endAt := func(dMs int64) {
		s.after(dMs*1000, event{kind: evFaultEnd, idx: int32(i)})
	}
	switch f.Kind {
	case FaultCrash, FaultTorn:
		if !n.up() {
			return
		}
		n.crash(disk.CrashOptions{KeepProb: f.Keep, TearProb: f.Tear}, f.Seed)
		endAt(f.DurMs)
	case FaultEIO:
		if !n.up() {
			return
		}
		n.failSync, n.failWrite = !f.Write, f.Write
		n.armed = &s.schedule[i]
		endAt(f.DurMs) // the supervisor kills the node
	case FaultClose:
		cc := s.target(f.Client)
		nc := cc.conns[n.idx]
		if f.ServerSide {
			if nc.l != nil && nc.l.srv != nil && !nc.l.srv.closed && n.up() && !n.paused {
				n.begin()
				nc.l.srv.end(true)
				n.flush()
			}
			return
		}
		if f.Partial {
			// The client dies in the middle of writing its next request.
			cc.tornWrite = newRand(s.cfg.Seed, streamFault, f.Seed)
			return
		}
		nc.close()
	case FaultReset:
		s.target(f.Client).conns[n.idx].drop(true)
	case FaultDelay:
		s.spikeUntil = max(s.spikeUntil, s.now+f.DurMs*1000)
		s.spikeExtraUs = f.ExtraMs * 1000
	case FaultPartition, FaultOneWay:
		c := cut{client: -1, node: n.idx, both: f.Kind == FaultPartition, toSrv: f.ToServer, untilUs: s.now + f.DurMs*1000}
		if f.Client >= 0 {
			c.client = s.target(f.Client).idx
		}
		s.cuts = append(s.cuts, c)
	case FaultPause:
		if !n.up() {
			return
		}
		n.pause(s.now + f.DurMs*1000)
		endAt(f.DurMs)
	case FaultIsolate:
		target := n.idx
		if f.Leader {
			if g := s.oracle.group(int32(f.Client % s.cfg.Workload.Partitions)); g != 0 {
				if l := s.oracle.leaderOf(g); l >= 0 {
					target = l
				}
			}
		}
		s.tr.line(s.now, "sim", "isolate").i("node", int64(target)).end()
		s.peerCuts = append(s.peerCuts, peerCut{a: target, b: -1, both: true, untilUs: s.now + f.DurMs*1000})
	case FaultSplit, FaultPeerOneWay:
		s.peerCuts = append(s.peerCuts, peerCut{a: n.idx, b: f.Peer % len(s.nodes), both: f.Kind == FaultSplit, untilUs: s.now + f.DurMs*1000})
	case FaultPeerDrop:
		s.peerDropUntil = max(s.peerDropUntil, s.now+f.DurMs*1000)
		s.peerDropProb = f.Prob
	case FaultSkew, FaultSkewBack:
		n.skew(f.SkewMs, f.DriftPPM)
		if n.up() && !n.paused {
			n.begin()
			n.flush()
		}
	}
}

// endFault ends fault i: a crashed node restarts, an EIO'd node is killed (and restarts
// after a short delay), a pause ends.
func (s *Sim) endFault(i int, token uint64) {
	f := s.schedule[i]
	n := s.nodes[f.Node%len(s.nodes)]
	s.tr.line(s.now, "sim", "fault-end").i("i", int64(i)).s("kind", f.Kind.String()).i("step", int64(token)).end()
	if token == 1 {
		n.restart()
		return
	}
	switch f.Kind {
	case FaultCrash, FaultTorn:
		n.restart()
	case FaultEIO:
		if s.healed || !n.up() {
			return
		}
		n.crash(disk.CrashOptions{KeepProb: f.Keep}, f.Seed)
		s.after(between(newRand(s.cfg.Seed, streamFault, f.Seed), 5_000, 200_000), event{kind: evFaultEnd, idx: int32(i), token: 1})
	case FaultPause:
		n.resume(false)
	}
}

// target is the workload client a connection fault names.
func (s *Sim) target(client int) *clientConn {
	return s.work[client%len(s.work)]
}
