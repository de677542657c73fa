// The quiz on the course page: check a student's answer and say whether it is right, and why.
//
// Each question's answer and explanation travel in the page encoded (courseware/audience.py
// writes them): XORed with a stream of bytes from mulberry32, seeded by this build's salt and
// the question's number, then base64. That keeps them out of a glance at the page's source;
// a student who reads this script can still decode them, and that is accepted.
(function () {
  "use strict";

  // mulberry32, a byte at a time: the same numbers as audience.keystream in Python.
  function keystream(seed) {
    let state = seed >>> 0;
    return function nextByte() {
      state = (state + 0x6d2b79f5) >>> 0;
      let mixed = Math.imul(state ^ (state >>> 15), state | 1);
      mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61)) ^ mixed;
      return ((mixed ^ (mixed >>> 14)) >>> 0) & 0xff;
    };
  }

  function questionSeed(salt, number) {
    return (salt ^ Math.imul(number, 0x9e3779b1)) >>> 0;
  }

  function decodeAnswer(encoded, seed) {
    const coded = Uint8Array.from(atob(encoded), (character) => character.charCodeAt(0));
    const nextByte = keystream(seed);
    const plain = coded.map((byte) => byte ^ nextByte());
    return JSON.parse(new TextDecoder().decode(plain));
  }

  // A number as a student types it, read by one rule (docs/quiz.md): the page prints 101,770,
  // so commas that split the number into groups of three digits group thousands ("101,770",
  // "1,234.5"); otherwise a single comma is a decimal comma ("97,61", "0,976"); a point is
  // always a decimal point. The box is a text field, not type=number, because a browser
  // reads a number field by its own locale (Chromium in English drops the comma of "97,61")
  // and hands over nothing it cannot read. NaN for text that is not a number.
  function readNumber(typed) {
    const [, sign, body] = /^([+-]?)(.*)$/.exec(typed.trim());
    let digits = body;
    if (/^[1-9]\d{0,2}(,\d{3})+(\.\d*)?$/.test(body)) {
      digits = body.replaceAll(",", "");
    } else if (/^\d*,\d+$/.test(body)) {
      digits = body.replace(",", ".");
    }
    return /^(\d+(\.\d*)?|\.\d+)$/.test(digits) ? Number(sign + digits) : NaN;
  }

  // The student's answer: the chosen choice's index, or the number typed (NaN if it is not
  // one); null if none.
  function givenAnswer(form) {
    if (form.dataset.kind === "number") {
      const text = form.querySelector("input.number-answer").value;
      return text.trim() === "" ? null : readNumber(text);
    }
    const chosen = form.querySelector("input[type=radio]:checked");
    return chosen ? Number(chosen.value) : null;
  }

  function isRight(answer, given) {
    if (answer.value !== null) {
      // A little room for the rounding of decimals, far below any tolerance an author sets.
      return Math.abs(given - answer.value) <= answer.tolerance + 1e-9;
    }
    return answer.right.includes(given);
  }

  function checkAnswer(form, salt) {
    const verdict = form.querySelector(".verdict");
    const given = givenAnswer(form);
    // Only "right" and "wrong" change: the verdict's other classes (screen-only, which keeps
    // it off the printed handout) stay.
    verdict.classList.remove("right", "wrong");
    if (given === null) {
      verdict.textContent = form.dataset.kind === "number"
        ? "Type a number first." : "Choose an answer first.";
      return;
    }
    if (Number.isNaN(given)) {
      verdict.textContent = "This is not a number the page can read: write it as 101770, "
        + "101,770 or 97.61.";
      return;
    }
    const seed = questionSeed(salt, Number(form.dataset.number));
    const answer = decodeAnswer(form.dataset.answer, seed);
    const right = isRight(answer, given);
    verdict.classList.add(right ? "right" : "wrong");
    verdict.innerHTML = "<p><strong>" + (right ? "Right." : "Not right.") + "</strong></p>"
      + answer.explanation;
  }

  function startQuiz() {
    const saltElement = document.getElementById("quiz-salt");
    if (!saltElement) {
      return;
    }
    const salt = Number(JSON.parse(saltElement.textContent));
    for (const form of document.querySelectorAll("form.question")) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        checkAnswer(form, salt);
      });
    }
  }

  startQuiz();
})();
