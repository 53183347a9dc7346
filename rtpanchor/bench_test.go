package rtpanchor

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkReceivePacket: one 20 ms PCMU packet through a leg's receive
// path (parse, latch check, decode into the jitter buffer), no syscall.
func BenchmarkReceivePacket(b *testing.B) {
	l := &Leg{eventPT: 101}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}, Payload: make([]byte, FrameSamples)}).Marshal()
	from := netip.MustParseAddrPort("127.0.0.1:4000")
	var pkt rtp.Packet
	frame := make([]int16, FrameSamples)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		raw[3] = byte(i)
		l.handleRTP(&pkt, raw, from, now)
		l.jb.pull(frame)
	}
}

// benchSession builds a session of n legs whose peers are sockets nobody
// reads (the kernel drops what overflows), routed as topology says.
func benchSession(b *testing.B, a *Anchor, n int) (*Session, []*Leg) {
	b.Helper()
	s, err := a.NewSession(nil)
	if err != nil {
		b.Fatal(err)
	}
	var legs []*Leg
	for i := range n {
		l, err := s.NewLeg(fmt.Sprint(i))
		if err != nil {
			b.Fatal(err)
		}
		sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sink.Close() })
		codec := PCMU
		if i%2 == 1 {
			codec = PCMA // every call transcodes
		}
		if err := l.SetRemote(sink.LocalAddr().(*net.UDPAddr).AddrPort(), codec, 101, SendRecv); err != nil {
			b.Fatal(err)
		}
		legs = append(legs, l)
	}
	return s, legs
}

// benchMix times one 20 ms frame of one session: mixing, encoding and
// sending every leg's packet (one sendto per leg). Inbound audio is put
// straight into the jitter buffers (BenchmarkReceivePacket is that half).
func benchMix(b *testing.B, three bool) {
	a, _ := newTestAnchor(b, Config{})
	n := 2
	if three {
		n = 3
	}
	s, legs := benchSession(b, a, n)
	if three {
		if err := s.Monitor(legs[2], legs[0], legs[1], Barge); err != nil {
			b.Fatal(err)
		}
	} else if err := s.Relay(legs[0], legs[1]); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, FrameSamples)
	for i := range payload {
		payload[i] = byte(i)
	}
	now := time.Now()
	b.ReportAllocs()
	var tick uint64 = 1
	for b.Loop() {
		for _, l := range legs {
			l.mu.Lock()
			l.jb.push(PCMU, payload)
			l.mu.Unlock()
		}
		s.tick(now, tick)
		tick++
	}
	// One op is 20 ms of a call; 50 ops are one second of it.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*50/1e6, "ms-cpu/call-second")
}

func BenchmarkMixTwoParty(b *testing.B) { benchMix(b, false) }
func BenchmarkMixThreeWay(b *testing.B) { benchMix(b, true) }

// BenchmarkCapacity runs N real anchored calls for CAPACITY_SECONDS
// (default 5) with a load generator sending every leg's 20 ms RTP packet
// over loopback, and reports how many ticks finished after their 20 ms
// deadline, the tick mixing time, and the CPU the whole process used
// (anchor and load generator share the cores). Use -benchtime=1x.
//
// The "mixed" case is the target load together: CAPACITY_TWO_PARTY
// two-party calls (default 300) and CAPACITY_THREE_WAY barges (default
// 100) at once, e.g. (docs/performance.md)
//
//	CAPACITY_SECONDS=30 go test -run '^$' -bench 'Capacity/mixed' -benchtime 1x ./rtpanchor/
func BenchmarkCapacity(b *testing.B) {
	secs := 5
	if v := os.Getenv("CAPACITY_SECONDS"); v != "" {
		fmt.Sscan(v, &secs)
	}
	two, three := 300, 100
	if v := os.Getenv("CAPACITY_TWO_PARTY"); v != "" {
		fmt.Sscan(v, &two)
	}
	if v := os.Getenv("CAPACITY_THREE_WAY"); v != "" {
		fmt.Sscan(v, &three)
	}
	b.Run(fmt.Sprintf("mixed-%d-two-party-%d-three-way", two, three), func(b *testing.B) {
		for b.Loop() {
			runCapacity(b, two, three, time.Duration(secs)*time.Second)
		}
	})
	for _, tc := range []struct {
		legs  int
		calls []int
	}{
		{2, []int{100, 200, 300, 400, 500, 600}},
		{3, []int{50, 100, 150, 200, 300}},
	} {
		for _, calls := range tc.calls {
			name := fmt.Sprintf("two-party-%d", calls)
			if tc.legs == 3 {
				name = fmt.Sprintf("three-way-%d", calls)
			}
			two, three := calls, 0
			if tc.legs == 3 {
				two, three = 0, calls
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					runCapacity(b, two, three, time.Duration(secs)*time.Second)
				}
			})
		}
	}
}

// runCapacity runs two two-party calls and three three-way (barge)
// calls at once for d.
func runCapacity(b *testing.B, two, three int, d time.Duration) {
	calls := two + three
	legs := 2*two + 3*three
	var (
		mu    sync.Mutex
		busy  []time.Duration
		late  int
		ticks int
	)
	a, rec := newTestAnchor(b, Config{MaxCalls: calls, PortMin: 30000, PortMax: 30000 + 4*legs + 400},
		withTickObserver(func(t time.Duration) {
			mu.Lock()
			busy = append(busy, t)
			ticks++
			mu.Unlock()
		}))
	defer a.Close()
	type peer struct {
		conn *net.UDPConn
		to   netip.AddrPort
		pkt  []byte
	}
	var peers []peer
	for k := range calls {
		perCall := 2
		if k >= two {
			perCall = 3
		}
		s, err := a.NewSession(nil)
		if err != nil {
			b.Fatal(err)
		}
		var legs []*Leg
		for i := range perCall {
			l, err := s.NewLeg("")
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			codec := PCMU
			if i == 1 {
				codec = PCMA
			}
			_ = l.SetRemote(c.LocalAddr().(*net.UDPAddr).AddrPort(), codec, 101, SendRecv)
			pcm := make([]int16, FrameSamples)
			for k := range pcm {
				pcm[k] = int16(3000 * math.Sin(2*math.Pi*float64(400+100*i)*float64(k)/SampleRate))
			}
			payload := make([]byte, FrameSamples)
			encode(codec, pcm, payload)
			raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: uint8(codec), SSRC: newSSRC()}, Payload: payload}).Marshal()
			peers = append(peers, peer{conn: c, to: l.Local(), pkt: raw})
			legs = append(legs, l)
		}
		if perCall == 3 {
			_ = s.Monitor(legs[2], legs[0], legs[1], Barge)
		} else {
			_ = s.Relay(legs[0], legs[1])
		}
	}
	defer func() {
		for _, p := range peers {
			p.conn.Close()
		}
	}()
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	mu.Lock()
	busy, ticks = busy[:0], 0
	mu.Unlock()
	late0 := rec.late.Load()
	start := time.Now()
	tk := time.NewTicker(FrameDuration)
	var seq uint16
	var ts uint32
	for time.Since(start) < d {
		<-tk.C
		seq++
		ts += FrameSamples
		for _, p := range peers {
			p.pkt[2], p.pkt[3] = byte(seq>>8), byte(seq)
			p.pkt[4], p.pkt[5], p.pkt[6], p.pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			_, _ = p.conn.WriteToUDPAddrPort(p.pkt, p.to)
		}
	}
	tk.Stop()
	wall := time.Since(start)
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	late = int(rec.late.Load() - late0)
	mu.Lock()
	sorted := slices.Clone(busy)
	n := ticks
	mu.Unlock()
	slices.Sort(sorted)
	pct := func(p float64) float64 {
		if len(sorted) == 0 {
			return 0
		}
		return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Microseconds()) / 1000
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	var la [3]float64
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(raw), &la[0], &la[1], &la[2])
	}
	b.Logf("%d two-party + %d three-way calls for %v: %d of %d ticks late, cpu %.2f cores (%.2f ms per call-second), load average %.2f %.2f %.2f",
		two, three, wall.Round(time.Millisecond), late, n, cpu.Seconds()/wall.Seconds(),
		float64(cpu.Microseconds())/1000/(float64(calls)*wall.Seconds()), la[0], la[1], la[2])
	b.ReportMetric(float64(late), "late-ticks")
	b.ReportMetric(float64(n), "ticks")
	b.ReportMetric(pct(0.5), "p50-mix-ms")
	b.ReportMetric(pct(0.99), "p99-mix-ms")
	b.ReportMetric(pct(1), "max-mix-ms")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
}
