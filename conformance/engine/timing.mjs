// A node --test reporter that says where a run's time went: the wall time
// of each test file (named by its matrix suite) and the slowest tests (a test's time is that of its
// slowest matrix cell, the cells of a test running side by side), with
// pass/fail/todo/skip counts of the cells per file. engine-cell.mjs adds it
// next to the spec reporter:
//
//   node --test --test-reporter=spec --test-reporter-destination=stdout \
//     --test-reporter=./engine/timing.mjs --test-reporter-destination=stderr test/
const CELL = /^\d+\.\d+\.\d+\/(json|cbor|bare)$/;

export default async function* timing(source) {
	// Events of a file arrive together, children before their parent, so
	// everything before a top-level (nesting 0) event belongs to it: the
	// suite a test file declares with matrix(). (data.file names
	// harness.mjs, where the cells are declared.)
	const files = new Map(); // suite -> { ms, pass, fail, todo, skip }
	const tests = []; // { file, name, ms }
	let f = { ms: 0, pass: 0, fail: 0, todo: 0, skip: 0 };
	let pending = [];
	// Per nesting level, whether the events seen since the last parent were
	// matrix cells: the event after them at the level above is their test.
	const cellsBelow = new Map();
	for await (const { type, data } of source) {
		if (type !== "test:pass" && type !== "test:fail") continue;
		const ms = data.details?.duration_ms ?? 0;
		if (CELL.test(data.name)) {
			if (data.skip !== undefined) f.skip++;
			else if (data.todo !== undefined) f.todo++;
			else if (type === "test:pass") f.pass++;
			else f.fail++;
			cellsBelow.set(data.nesting, true);
			continue;
		}
		if (cellsBelow.get(data.nesting + 1)) {
			pending.push({ name: data.name, ms });
			cellsBelow.set(data.nesting + 1, false);
		}
		if (data.nesting === 0) {
			f.ms = ms;
			files.set(data.name, f);
			for (const t of pending) tests.push({ file: data.name, ...t });
			f = { ms: 0, pass: 0, fail: 0, todo: 0, skip: 0 };
			pending = [];
		}
	}
	const s = (ms) => (ms / 1000).toFixed(1).padStart(6);
	let out = "\ntiming: test files (wall time of each; cells pass/fail/todo/skip)\n";
	for (const [file, f] of [...files].sort((a, b) => b[1].ms - a[1].ms)) {
		out += `${s(f.ms)} s  ${file}  ${f.pass}/${f.fail}/${f.todo}/${f.skip}\n`;
	}
	const total = [...files.values()].reduce(
		(a, f) => ({ pass: a.pass + f.pass, fail: a.fail + f.fail, todo: a.todo + f.todo, skip: a.skip + f.skip }),
		{ pass: 0, fail: 0, todo: 0, skip: 0 },
	);
	const sumMs = tests.reduce((a, t) => a + t.ms, 0);
	out += `timing: cells ${total.pass} pass, ${total.fail} fail, ${total.todo} todo, ${total.skip} skip; ${tests.length} tests, ${s(sumMs).trim()} s summed\n`;
	out += "timing: slowest tests\n";
	for (const t of tests.sort((a, b) => b.ms - a.ms).slice(0, 25)) {
		out += `${s(t.ms)} s  ${t.file}  ${t.name}\n`;
	}
	yield out;
}
