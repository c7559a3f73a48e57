"use strict";
const assert = require("assert");
const sinon = require("sinon");
const { StatusReporter } = require("../dist/nodes/support/status-reporter");

describe("StatusReporter", function () {
  let clock;
  let shown;
  let node;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 100000 });
    shown = [];
    node = { status: (s) => shown.push(s) };
  });
  afterEach(() => clock.restore());

  const green = (text) => ({ fill: "green", shape: "dot", text });

  it("shows the first status at once", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("10 fps"));
    assert.deepStrictEqual(shown, [green("10 fps")]);
  });

  it("shows the same status only once", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("10 fps"));
    r.show(green("10 fps"));
    clock.tick(5000);
    r.show(green("10 fps"));
    assert.deepStrictEqual(shown, [green("10 fps")]);
  });

  it("shows a status marked immediate at once, even in the same colour (a change of state)", function () {
    const r = new StatusReporter(node, 1000);
    const yellow = (text) => ({ fill: "yellow", shape: "ring", text });
    r.show(yellow("stalled"));
    clock.tick(10);
    r.show(yellow("connecting"), true);
    assert.deepStrictEqual(shown, [yellow("stalled"), yellow("connecting")]);
    clock.tick(10);
    r.show(yellow("connecting 2"));
    assert.strictEqual(shown.length, 2, "without the mark, text alone still waits");
  });

  it("shows a change of colour or shape at once, however soon", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("streaming"));
    clock.tick(10);
    r.show({ fill: "red", shape: "ring", text: "disconnected" });
    clock.tick(10);
    r.show({ fill: "red", shape: "dot", text: "disconnected" });
    clock.tick(10);
    r.show(green("streaming"));
    assert.strictEqual(shown.length, 4);
    assert.deepStrictEqual(shown[3], green("streaming"));
  });

  it("throttles text-only changes to one per interval, the newest text winning", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    clock.tick(100);
    r.show(green("2 fps"));
    clock.tick(100);
    r.show(green("3 fps"));
    assert.deepStrictEqual(shown, [green("1 fps")]);
    clock.tick(799);
    assert.strictEqual(shown.length, 1, "not before the interval is over");
    clock.tick(1);
    assert.deepStrictEqual(shown, [green("1 fps"), green("3 fps")]);
    clock.tick(5000);
    assert.strictEqual(shown.length, 2, "the dropped text never comes later");
  });

  it("shows a text change at once when the interval has passed", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    clock.tick(1000);
    r.show(green("2 fps"));
    assert.deepStrictEqual(shown, [green("1 fps"), green("2 fps")]);
  });

  it("a colour change replaces a text waiting in the throttle", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    r.show(green("2 fps"));
    r.show({ fill: "yellow", shape: "ring", text: "reconnecting" });
    clock.tick(5000);
    assert.deepStrictEqual(shown, [green("1 fps"), { fill: "yellow", shape: "ring", text: "reconnecting" }]);
  });

  it("going back to the shown text drops the waiting one (nothing shown twice)", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    r.show(green("2 fps"));
    r.show(green("1 fps"));
    clock.tick(5000);
    assert.deepStrictEqual(shown, [green("1 fps")]);
  });

  it("clear() removes the status and the pending timer", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    r.show(green("2 fps"));
    assert.strictEqual(clock.countTimers(), 1);
    r.clear();
    assert.strictEqual(clock.countTimers(), 0);
    clock.tick(5000);
    assert.deepStrictEqual(shown, [green("1 fps"), {}]);
  });

  it("after clear() the same status shows again", function () {
    const r = new StatusReporter(node, 1000);
    r.show(green("1 fps"));
    r.clear();
    r.show(green("1 fps"));
    assert.deepStrictEqual(shown, [green("1 fps"), {}, green("1 fps")]);
  });
});
