package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// kind is what a type expression is.
type kind int

const (
	kPrim     kind = iota // a BARE primitive: name holds it (u32, str, data, ...)
	kFixed                // data[n]
	kNamed                // a reference to a user type: name holds it
	kOptional             // optional<elem>
	kList                 // list<elem>
	kMap                  // map<key><elem>
	kStruct               // struct { fields }
	kUnion                // union { variants }
	kEnum                 // enum { values }
)

// typ is a type expression of the schema.
type typ struct {
	kind     kind
	name     string // kPrim, kNamed
	n        int    // kFixed: the length
	elem     *typ   // kOptional, kList, kMap (the value)
	key      *typ   // kMap
	fields   []field
	variants []variant
	values   []enumValue
}

type field struct {
	name string
	doc  []string
	t    *typ
}

type variant struct {
	name string // a user type
	tag  uint64
}

type enumValue struct {
	name  string
	value uint64
}

// decl is one `type Name T` of the schema.
type decl struct {
	name string
	doc  []string
	t    *typ
}

type schema struct {
	decls  []*decl
	byName map[string]*decl
}

// primitives are the BARE primitive types the generator knows.
var primitives = map[string]bool{
	"uint": true, "int": true,
	"u8": true, "u16": true, "u32": true, "u64": true,
	"i8": true, "i16": true, "i32": true, "i64": true,
	"f32": true, "f64": true,
	"bool": true, "str": true, "data": true, "void": true,
}

// token is a lexical token with the comment lines right above it (no
// blank line between).
type token struct {
	text string
	line int
	doc  []string
}

func lex(src string) ([]token, error) {
	var toks []token
	var doc []string
	docEnd := -1 // line of the last comment line in doc
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			if docEnd != line-1 {
				doc = nil
			}
			doc = append(doc, strings.TrimSpace(strings.TrimPrefix(src[i:i+j], "#")))
			docEnd = line
			i += j
		case strings.IndexByte("{}<>[]|=:", c) >= 0:
			toks = append(toks, token{text: string(c), line: line, doc: attach(&doc, docEnd, line)})
			i++
		case c == '_' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, token{text: src[i:j], line: line, doc: attach(&doc, docEnd, line)})
			i = j
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", line, c)
		}
	}
	return toks, nil
}

// attach hands the pending comment block to a token on the line right
// below it and clears it in any case.
func attach(doc *[]string, docEnd, line int) []string {
	d := *doc
	*doc = nil
	if docEnd == line-1 {
		return d
	}
	return nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *parser) next() token {
	if p.pos < len(p.toks) {
		p.pos++
		return p.toks[p.pos-1]
	}
	return token{}
}

func (p *parser) line() int {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].line
	}
	if len(p.toks) > 0 {
		return p.toks[len(p.toks)-1].line
	}
	return 0
}

func (p *parser) expect(s string) error {
	if t := p.next(); t.text != s {
		return fmt.Errorf("line %d: expected %q, found %q", t.line, s, t.text)
	}
	return nil
}

func (p *parser) ident() (token, error) {
	t := p.next()
	if t.text == "" || !isIdent(t.text) {
		return t, fmt.Errorf("line %d: expected a name, found %q", t.line, t.text)
	}
	return t, nil
}

func isIdent(s string) bool {
	return s != "" && (s[0] == '_' || unicode.IsLetter(rune(s[0])))
}

func (p *parser) number() (uint64, error) {
	t := p.next()
	n, err := strconv.ParseUint(t.text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("line %d: expected a number, found %q", t.line, t.text)
	}
	return n, nil
}

// parse reads a schema and checks it: names resolve, union variants and
// list elements are encodable, nothing is recursive.
func parse(src string) (*schema, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	s := &schema{byName: map[string]*decl{}}
	for p.pos < len(p.toks) {
		kw := p.next()
		if kw.text != "type" {
			return nil, fmt.Errorf("line %d: expected \"type\", found %q", kw.line, kw.text)
		}
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		if primitives[name.text] || s.byName[name.text] != nil {
			return nil, fmt.Errorf("line %d: type %s declared twice or shadows a primitive", name.line, name.text)
		}
		t, err := p.typeExpr(true)
		if err != nil {
			return nil, fmt.Errorf("type %s: %w", name.text, err)
		}
		d := &decl{name: name.text, doc: kw.doc, t: t}
		s.decls = append(s.decls, d)
		s.byName[d.name] = d
	}
	return s, s.check()
}

func (p *parser) typeExpr(top bool) (*typ, error) {
	t := p.next()
	switch t.text {
	case "struct", "union", "enum":
		if !top {
			return nil, fmt.Errorf("line %d: an anonymous %s is not supported; declare a type", t.line, t.text)
		}
		if err := p.expect("{"); err != nil {
			return nil, err
		}
		switch t.text {
		case "struct":
			return p.structBody()
		case "union":
			return p.unionBody()
		default:
			return p.enumBody()
		}
	case "optional", "list":
		if err := p.expect("<"); err != nil {
			return nil, err
		}
		elem, err := p.typeExpr(false)
		if err != nil {
			return nil, err
		}
		if err := p.expect(">"); err != nil {
			return nil, err
		}
		if t.text == "optional" {
			return &typ{kind: kOptional, elem: elem}, nil
		}
		if p.peek() == "[" {
			return nil, fmt.Errorf("line %d: fixed-length lists are not supported", p.line())
		}
		return &typ{kind: kList, elem: elem}, nil
	case "map":
		if err := p.expect("<"); err != nil {
			return nil, err
		}
		key, err := p.typeExpr(false)
		if err != nil {
			return nil, err
		}
		if err := p.expect(">"); err != nil {
			return nil, err
		}
		if err := p.expect("<"); err != nil {
			return nil, err
		}
		elem, err := p.typeExpr(false)
		if err != nil {
			return nil, err
		}
		if err := p.expect(">"); err != nil {
			return nil, err
		}
		return &typ{kind: kMap, key: key, elem: elem}, nil
	case "data":
		if p.peek() == "[" {
			p.next()
			n, err := p.number()
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			if n == 0 || n > 1<<16 {
				return nil, fmt.Errorf("line %d: data[%d] out of range", t.line, n)
			}
			return &typ{kind: kFixed, n: int(n)}, nil
		}
		return &typ{kind: kPrim, name: "data"}, nil
	}
	if primitives[t.text] {
		return &typ{kind: kPrim, name: t.text}, nil
	}
	if !isIdent(t.text) {
		return nil, fmt.Errorf("line %d: expected a type, found %q", t.line, t.text)
	}
	return &typ{kind: kNamed, name: t.text}, nil
}

func (p *parser) structBody() (*typ, error) {
	t := &typ{kind: kStruct}
	seen := map[string]bool{}
	for p.peek() != "}" {
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		if seen[name.text] {
			return nil, fmt.Errorf("line %d: field %s declared twice", name.line, name.text)
		}
		seen[name.text] = true
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		ft, err := p.typeExpr(false)
		if err != nil {
			return nil, err
		}
		t.fields = append(t.fields, field{name: name.text, doc: name.doc, t: ft})
	}
	p.next()
	if len(t.fields) == 0 {
		return nil, fmt.Errorf("line %d: empty struct; use void", p.line())
	}
	return t, nil
}

func (p *parser) unionBody() (*typ, error) {
	t := &typ{kind: kUnion}
	if p.peek() == "|" {
		p.next()
	}
	var tag uint64
	tags := map[uint64]bool{}
	for {
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		if p.peek() == "=" {
			p.next()
			if tag, err = p.number(); err != nil {
				return nil, err
			}
		}
		if tags[tag] {
			return nil, fmt.Errorf("line %d: tag %d used twice", name.line, tag)
		}
		tags[tag] = true
		t.variants = append(t.variants, variant{name: name.text, tag: tag})
		tag++
		if p.peek() != "|" {
			break
		}
		p.next()
	}
	return t, p.expect("}")
}

func (p *parser) enumBody() (*typ, error) {
	t := &typ{kind: kEnum}
	var value uint64
	values := map[uint64]bool{}
	for p.peek() != "}" {
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		if p.peek() == "=" {
			p.next()
			if value, err = p.number(); err != nil {
				return nil, err
			}
		}
		if values[value] {
			return nil, fmt.Errorf("line %d: value %d used twice", name.line, value)
		}
		values[value] = true
		t.values = append(t.values, enumValue{name: name.text, value: value})
		value++
	}
	p.next()
	if len(t.values) == 0 {
		return nil, fmt.Errorf("line %d: empty enum", p.line())
	}
	return t, nil
}

// check resolves names and rejects what the generator cannot encode
// safely.
func (s *schema) check() error {
	for _, d := range s.decls {
		if err := s.checkType(d.t, d.t); err != nil {
			return fmt.Errorf("type %s: %w", d.name, err)
		}
	}
	for _, d := range s.decls {
		if _, err := s.minSize(d.t, map[string]bool{d.name: true}); err != nil {
			return fmt.Errorf("type %s: %w", d.name, err)
		}
	}
	return nil
}

func (s *schema) checkType(t, top *typ) error {
	switch t.kind {
	case kNamed:
		if s.byName[t.name] == nil {
			return fmt.Errorf("unknown type %s", t.name)
		}
	case kPrim:
		if t.name == "void" && t != top {
			return fmt.Errorf("void is only allowed as a declared type")
		}
	case kOptional:
		return s.checkType(t.elem, top)
	case kList:
		if err := s.checkType(t.elem, top); err != nil {
			return err
		}
		if n, err := s.minSize(t.elem, map[string]bool{}); err == nil && n == 0 {
			return fmt.Errorf("list elements must take at least one byte")
		}
	case kMap:
		switch {
		case t.key.kind != kPrim, t.key.name == "void", t.key.name == "data", t.key.name == "bool",
			t.key.name == "f32", t.key.name == "f64":
			return fmt.Errorf("map keys must be str or an integer (they are encoded in ascending order)")
		}
		return s.checkType(t.elem, top)
	case kStruct:
		for _, f := range t.fields {
			if err := s.checkType(f.t, top); err != nil {
				return fmt.Errorf("field %s: %w", f.name, err)
			}
		}
	case kUnion:
		for _, v := range t.variants {
			d := s.byName[v.name]
			if d == nil {
				return fmt.Errorf("unknown type %s", v.name)
			}
			if !s.isDefined(d) {
				return fmt.Errorf("variant %s must be a struct, void, list or map type", v.name)
			}
		}
	}
	return nil
}

// isDefined reports whether d becomes a defined Go type (which can carry
// a union's marker method) rather than an alias of a Go builtin.
func (s *schema) isDefined(d *decl) bool {
	switch d.t.kind {
	case kStruct, kUnion, kEnum, kList, kMap:
		return true
	case kPrim:
		return d.t.name == "void"
	}
	return false
}

// minSize is the fewest bytes an encoding of t takes. It fails on a
// recursive type: the decoder's stack depth must be bounded by the schema.
func (s *schema) minSize(t *typ, visiting map[string]bool) (int, error) {
	switch t.kind {
	case kPrim:
		switch t.name {
		case "void":
			return 0, nil
		case "u16", "i16":
			return 2, nil
		case "u32", "i32", "f32":
			return 4, nil
		case "u64", "i64", "f64":
			return 8, nil
		}
		return 1, nil
	case kFixed:
		return t.n, nil
	case kNamed:
		if visiting[t.name] {
			return 0, fmt.Errorf("recursive type %s is not supported", t.name)
		}
		visiting[t.name] = true
		defer delete(visiting, t.name)
		return s.minSize(s.byName[t.name].t, visiting)
	case kOptional, kList, kMap, kEnum:
		if t.kind == kOptional {
			if _, err := s.minSize(t.elem, visiting); err != nil {
				return 0, err
			}
		}
		if t.kind == kList || t.kind == kMap {
			if _, err := s.minSize(t.elem, visiting); err != nil {
				return 0, err
			}
		}
		return 1, nil
	case kStruct:
		n := 0
		for _, f := range t.fields {
			m, err := s.minSize(f.t, visiting)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case kUnion:
		least := -1
		for _, v := range t.variants {
			m, err := s.minSize(&typ{kind: kNamed, name: v.name}, visiting)
			if err != nil {
				return 0, err
			}
			if least < 0 || m < least {
				least = m
			}
		}
		return 1 + least, nil
	}
	return 0, fmt.Errorf("unknown kind %d", t.kind)
}
