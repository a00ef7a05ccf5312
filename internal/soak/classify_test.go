package soak

import (
	"io"
	"testing"
)

// TestClassify feeds the audit's comparison one case of each outcome and
// checks each lands in its count.
func TestClassify(t *testing.T) {
	for _, resends := range []bool{false, true} {
		s := &soak{b: Backend{Resends: resends}, o: Options{Log: io.Discard}, ops: map[int]*op{}, took: map[int]int{}, event: map[int]int{}}
		add := func(id, kind, status int) { s.ops[id] = &op{kind: kind, status: status} }
		add(1, opApply, stAcked)  // applied once: fine
		add(2, opApply, stAcked)  // missing: lost
		add(3, opApply, stAcked)  // applied twice: doubled (or re-sent)
		add(4, opApply, stFailed) // failed but applied: answer lost
		add(5, opArm, stAcked)    // never fired
		add(6, opArm, stAcked)    // fired twice: at least once
		add(7, opSend, stAcked)   // never received nor queued: lost
		add(8, opSend, stAcked)   // received once: fine
		add(10, opSend, stFailed) // received (acknowledged) but its record is gone: lost
		add(11, opConn, stFailed) // its event arrived, its record is gone: lost
		add(12, opConn, stAcked)  // applied once: fine
		add(13, opSend, stAcked)  // sent twice (re-sent or doubled), each copy received once
		s.took[8], s.took[10], s.took[13] = 1, 1, 2
		s.event[11], s.event[12], s.event[100] = 1, 1, 1     // 100: never sent: phantom
		apply := map[int]int{1: 1, 3: 2, 4: 1, 12: 1, 99: 1} // 99: never sent: phantom
		rec := [][numKinds]map[int]int{{opApply: apply, opConn: apply, opArm: {6: 2}, opSend: {8: 1, 13: 2}}}
		s.classify(rec)
		r := s.rep
		doubled, resent := 3, 0 // 3 applied twice; 13 queued twice and received twice
		if resends {
			doubled, resent = 0, 2
		}
		want := Report{Lost: 4, Doubled: doubled, Resent: resent, AlarmsNeverFire: 1, AlarmRepeats: 1, AnswerLost: 1, Phantom: 2}
		got := Report{Lost: r.Lost, Doubled: r.Doubled, Resent: r.Resent, AlarmsNeverFire: r.AlarmsNeverFire, AlarmRepeats: r.AlarmRepeats, AnswerLost: r.AnswerLost, Phantom: r.Phantom}
		t.Logf("resends %v: %q", resends, r.Examples)
		if got.String() != want.String() {
			t.Errorf("resends %v:\n got %v\nwant %v\n%q", resends, got.String(), want.String(), r.Examples)
		}
	}
}
