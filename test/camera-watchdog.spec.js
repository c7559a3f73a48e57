"use strict";
// Watchdog: "no frame for this long" ends the connection, once per start.
const assert = require("assert");
const { Watchdog } = require("../dist/nodes/lib/camera/watchdog");

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe("camera watchdog", function () {
  let dog;
  afterEach(() => dog?.stop());

  it("calls onSilent once when nothing feeds it for the silence time", async function () {
    let silent = 0;
    dog = new Watchdog(300, () => silent++);
    dog.start();
    await wait(200);
    assert.strictEqual(silent, 0);
    await wait(500);
    assert.strictEqual(silent, 1, "once per start");
  });

  it("stays quiet while fed, and stop() ends the checks", async function () {
    let silent = 0;
    dog = new Watchdog(300, () => silent++);
    dog.start();
    const feeder = setInterval(() => dog.feed(), 50);
    await wait(700);
    clearInterval(feeder);
    assert.strictEqual(silent, 0);
    dog.stop();
    await wait(500);
    assert.strictEqual(silent, 0);
  });

  it("start() after a silence watches the new attempt afresh", async function () {
    let silent = 0;
    dog = new Watchdog(200, () => silent++);
    dog.start();
    await wait(450);
    assert.strictEqual(silent, 1);
    dog.start();
    await wait(100);
    assert.strictEqual(silent, 1, "a fresh start is fed");
    await wait(350);
    assert.strictEqual(silent, 2);
  });
});
