package rivetpg

import "time"

// SetPingAfter changes how long a connection of d may sit idle before it is
// pinged, so that tests can keep a dead connection in use.
func SetPingAfter(d *Driver, after time.Duration) { d.pingAfter.Store(int64(after)) }
