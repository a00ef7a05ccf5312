package rivet

import (
	"strings"
	"testing"
)

// marker stands for a secret in the fuzzed values: no error may repeat it.
const marker = "s3cr3t-MARKER"

// FuzzConfigFile: any config file contents are applied or refused with an
// error that names the file and repeats no secret value; a refused file
// leaves no secret setting half-applied with the marker shown.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		`{"listen": "127.0.0.1:7000", "max_incoming_message_size": "1MiB", "namespaces": ["a", "b"]}`,
		"listen: :7000\nlog_level: debug\nallowed_origins: [https://a.example]\n",
		"postgres_url: postgress://u:" + marker + "@h/db\n",
		"engine: htp://ns:" + marker + "@h:6420\n",
		`{"admin_token": ["` + marker + `", 1]}`,
		"a: &x [*x, *x]\n", "listen: [", `{"listen": 1.5}`, "",
		"token: !!binary " + marker + "\n",
	} {
		f.Add("rivet.yaml", []byte(s))
		f.Add("rivet.json", []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, raw []byte) {
		if len(raw) > 1<<16 {
			return
		}
		c := &Config{}
		err := c.loadBytes(name, raw)
		if err == nil {
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "rivet: config file "+name) {
			t.Fatalf("error does not name the file: %v", msg)
		}
		if strings.Contains(strings.TrimPrefix(msg, "rivet: config file "+name), marker) && secretLine(raw) {
			t.Fatalf("error repeats a secret value: %v", msg)
		}
	})
}

// secretLine reports whether the marker appears only as a value of a
// secret setting (elsewhere, e.g. in a key or a non-secret value, an
// error may quote it).
func secretLine(raw []byte) bool {
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		k, _, _ := strings.Cut(strings.TrimLeft(line, " \t{\""), ":")
		k = strings.Trim(k, "\" ")
		secret := false
		for _, s := range settings {
			if s.Name == k && s.secret {
				secret = true
			}
		}
		if !secret {
			return false
		}
	}
	return true
}

// FuzzConfigSet: every setting takes any value or refuses it with an
// error naming the setting; a secret setting's error never repeats the
// value.
func FuzzConfigSet(f *testing.F) {
	for i, s := range settings {
		f.Add(uint8(i), s.Default)
		f.Add(uint8(i), "htp://ns:"+marker+"@host")
	}
	f.Add(uint8(2), "postgres://u:"+marker+"@h:5432/db")
	f.Add(uint8(3), "wss://ns:"+marker+"@h")
	f.Fuzz(func(t *testing.T, i uint8, v string) {
		s := settings[int(i)%len(settings)]
		c := &Config{}
		err := c.Set(s.Name, v)
		if err == nil {
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "rivet: "+s.Name+"=") {
			t.Fatalf("error does not name the setting: %v", msg)
		}
		if s.secret && strings.Contains(v, marker) && strings.Contains(msg, marker) {
			t.Fatalf("%s: error repeats the secret value: %v", s.Name, msg)
		}
	})
}

// TestSecretSettingsAreNotEchoed: a mistyped postgres_url, engine URL or
// token setting is refused without repeating the password or token it
// holds (the error goes to the terminal and the logs).
func TestSecretSettingsAreNotEchoed(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"RIVET_POSTGRES_URL", "postgress://app:" + marker + "@db:5432/app"},
		{"RIVET_ENGINE", "htp://ns:" + marker + "@engine:6420"},
		{"RIVET_ENDPOINT", "https://ns:" + marker + "@/"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, err := LoadConfig("")
			if err == nil {
				t.Fatal("a malformed value was accepted")
			}
			if strings.Contains(err.Error(), marker) || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("error %q: want the variable named and the secret hidden", err)
			}
		})
	}
	// A non-secret value is still quoted, to help find the typo.
	t.Setenv("RIVET_LISTEN", "localhost6420")
	if _, err := LoadConfig(""); err == nil || !strings.Contains(err.Error(), `"localhost6420"`) {
		t.Fatalf("listen: %v", err)
	}
}
