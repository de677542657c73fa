"use strict";
// A figure wider than the screen keeps its drawn size and scrolls in its box; the line under
// it ("Scroll sideways ...") shows only when the box really overflows: this marks each box
// that does with the class "overflows" (page.css shows the line), on load and whenever the
// window changes size.
function markScrollingFigures() {
  for (const box of document.querySelectorAll(".figure-scroll")) {
    box.classList.toggle("overflows", box.scrollWidth > box.clientWidth + 1);
  }
  document.documentElement.classList.add("figures-measured");
}
markScrollingFigures();
window.addEventListener("load", markScrollingFigures);
window.addEventListener("resize", markScrollingFigures);

// "Try it" on the course page: this build's own networks read a digit drawn or opened here,
// offline, in plain JavaScript. The preparation repeats digits/predict.py number for number
// (flattenAlpha, toMnist: see its docstrings), and the networks are the layers and weights
// stages/evaluate.py exported, run as Keras runs them at prediction time.
const DigitPredictor = (() => {
  const FRAME = 28;
  const DIGIT_BOX = 20;
  const INK_THRESHOLD = 0.1;
  const MAX_PIXELS = 50000000;

  // Rounding as digits/predict.py's round_half_up.
  function roundHalfUp(value) {
    return Math.floor(value + 0.5);
  }

  // numpy.median: the middle value, or the mean of the two middle values.
  function median(values) {
    const sorted = Float64Array.from(values).sort();
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  // RGBA pixels (0-255) -> greys in [0, 255]; transparent paper becomes the ink's opposite.
  function flattenAlpha(rgba, width, height) {
    const count = width * height;
    const grey = new Float64Array(count);
    const opaque = [];
    for (let i = 0; i < count; i++) {
      grey[i] = (299 * rgba[4 * i] + 587 * rgba[4 * i + 1] + 114 * rgba[4 * i + 2]) / 1000;
      if (rgba[4 * i + 3] > 127) opaque.push(grey[i]);
    }
    if (opaque.length === 0 || opaque.length === count) return grey;
    const paper = median(opaque) < 128 ? 255 : 0;
    for (let i = 0; i < count; i++) {
      const alpha = rgba[4 * i + 3];
      grey[i] = (grey[i] * alpha) / 255 + paper * (1 - alpha / 255);
    }
    return grey;
  }

  // How much of each source pixel goes into each target pixel (target x source, row-major).
  function boxWeights(source, target) {
    const weights = new Float64Array(target * source);
    const step = source / target;
    for (let i = 0; i < target; i++) {
      const low = i * step;
      const high = (i + 1) * step;
      for (let k = Math.floor(low); k < Math.min(source, Math.ceil(high)); k++) {
        const overlap = Math.min(high, k + 1) - Math.max(low, k);
        if (overlap > 0) weights[i * source + k] = overlap * (target / source);
      }
    }
    return weights;
  }

  // weights (rows x inner) @ matrix (inner x cols), skipping zero weights (adding 0 is exact).
  function multiply(weights, rows, matrix, inner, cols) {
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < inner; k++) {
        const w = weights[i * inner + k];
        if (w === 0) continue;
        for (let j = 0; j < cols; j++) out[i * cols + j] += w * matrix[k * cols + j];
      }
    }
    return out;
  }

  function transpose(matrix, rows, cols) {
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) out[j * rows + i] = matrix[i * cols + j];
    }
    return out;
  }

  // Any grey image of one digit -> 28x28 floats in [0, 1], light ink on black, as in MNIST;
  // null when there is no ink.
  function toMnist(grey, width, height) {
    const border = [];
    for (let c = 0; c < width; c++) border.push(grey[c], grey[(height - 1) * width + c]);
    for (let r = 0; r < height; r++) border.push(grey[r * width], grey[r * width + width - 1]);
    let image = grey;
    if (median(border) > 127) {
      image = grey.map((value) => 255 - value);
      for (let i = 0; i < border.length; i++) border[i] = 255 - border[i];
    }
    const paper = median(border);
    const ink = image.map((value) => Math.max(value - paper, 0));
    let brightest = 0;
    for (const value of ink) brightest = Math.max(brightest, value);
    if (brightest <= 0) return null;

    let top = height, bottom = -1, left = width, right = -1;
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        if (ink[r * width + c] > INK_THRESHOLD * brightest) {
          top = Math.min(top, r);
          bottom = Math.max(bottom, r);
          left = Math.min(left, c);
          right = Math.max(right, c);
        }
      }
    }
    const inkHeight = bottom - top + 1;
    const inkWidth = right - left + 1;
    const cropped = new Float64Array(inkHeight * inkWidth);
    for (let r = 0; r < inkHeight; r++) {
      for (let c = 0; c < inkWidth; c++) {
        cropped[r * inkWidth + c] = ink[(top + r) * width + left + c] * (255 / brightest);
      }
    }

    const scale = DIGIT_BOX / Math.max(inkHeight, inkWidth);
    const newHeight = Math.max(1, roundHalfUp(inkHeight * scale));
    const newWidth = Math.max(1, roundHalfUp(inkWidth * scale));
    const tall = multiply(boxWeights(inkHeight, newHeight), newHeight, cropped, inkHeight, inkWidth);
    const columns = transpose(boxWeights(inkWidth, newWidth), newWidth, inkWidth);
    const digit = multiply(tall, newHeight, columns, inkWidth, newWidth);

    let total = 0, rowMoment = 0, colMoment = 0;
    for (let r = 0; r < newHeight; r++) {
      for (let c = 0; c < newWidth; c++) {
        const value = digit[r * newWidth + c];
        total += value;
        rowMoment += value * r;
        colMoment += value * c;
      }
    }
    const frameTop = Math.min(
      Math.max(roundHalfUp(FRAME / 2 - 0.5 - rowMoment / total), 0), FRAME - newHeight);
    const frameLeft = Math.min(
      Math.max(roundHalfUp(FRAME / 2 - 0.5 - colMoment / total), 0), FRAME - newWidth);
    const frame = new Float32Array(FRAME * FRAME);
    for (let r = 0; r < newHeight; r++) {
      for (let c = 0; c < newWidth; c++) {
        frame[(frameTop + r) * FRAME + frameLeft + c] = digit[r * newWidth + c] / 255;
      }
    }
    return frame;
  }

  function decodeWeights(encoded) {
    const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  }

  // The error function, for GELU: Numerical Recipes' erfc, accurate to 1.2e-7.
  function erf(x) {
    const z = Math.abs(x);
    const t = 1 / (1 + z / 2);
    const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 +
      t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 +
      t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? 1 - erfc : erfc - 1;
  }

  const ACTIVATIONS = {
    linear: (x) => x,
    relu: (x) => Math.max(x, 0),
    tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    elu: (x) => (x > 0 ? x : Math.exp(x) - 1),
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  };

  function activate(values, name) {
    if (name === "softmax") {
      let largest = -Infinity;
      for (const value of values) largest = Math.max(largest, value);
      const exps = values.map((value) => Math.exp(value - largest));
      let sum = 0;
      for (const value of exps) sum += value;
      return exps.map((value) => value / sum);
    }
    return values.map(ACTIVATIONS[name]);
  }

  function dense(layer, input) {
    const kernel = layer.kernelValues;
    const out = new Float64Array(layer.units);
    for (let o = 0; o < layer.units; o++) out[o] = layer.biasValues[o];
    for (let i = 0; i < input.length; i++) {
      const x = input[i];
      if (x === 0) continue;
      const row = i * layer.units;
      for (let o = 0; o < layer.units; o++) out[o] += x * kernel[row + o];
    }
    return activate(out, layer.activation);
  }

  // A "valid" convolution with stride 1, channels last, as Keras' Conv2D.
  function conv2d(layer, input, [height, width, channels]) {
    const [kh, kw] = layer.kernel_size;
    const filters = layer.filters;
    const outHeight = height - kh + 1;
    const outWidth = width - kw + 1;
    const kernel = layer.kernelValues;
    const out = new Float64Array(outHeight * outWidth * filters);
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) {
        const base = (y * outWidth + x) * filters;
        for (let f = 0; f < filters; f++) out[base + f] = layer.biasValues[f];
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            for (let c = 0; c < channels; c++) {
              const value = input[((y + ky) * width + x + kx) * channels + c];
              if (value === 0) continue;
              const row = ((ky * kw + kx) * channels + c) * filters;
              for (let f = 0; f < filters; f++) out[base + f] += value * kernel[row + f];
            }
          }
        }
      }
    }
    return [activate(out, layer.activation), [outHeight, outWidth, filters]];
  }

  function maxPool(layer, input, [height, width, channels]) {
    const [size, stride] = [layer.pool_size, layer.strides];
    const outHeight = Math.floor((height - size) / stride) + 1;
    const outWidth = Math.floor((width - size) / stride) + 1;
    const out = new Float64Array(outHeight * outWidth * channels).fill(-Infinity);
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) {
        for (let dy = 0; dy < size; dy++) {
          for (let dx = 0; dx < size; dx++) {
            const source = ((y * stride + dy) * width + x * stride + dx) * channels;
            const target = (y * outWidth + x) * channels;
            for (let c = 0; c < channels; c++) {
              out[target + c] = Math.max(out[target + c], input[source + c]);
            }
          }
        }
      }
    }
    return [out, [outHeight, outWidth, channels]];
  }

  // The ten probabilities a network gives a 28x28 image.
  function predictDigit(network, image) {
    let values = Float64Array.from(image);
    let shape = [FRAME, FRAME];
    for (const layer of network.layers) {
      if (layer.type === "reshape") shape = layer.shape;
      else if (layer.type === "flatten") shape = [values.length];
      else if (layer.type === "dense") values = dense(layer, values);
      else if (layer.type === "conv2d") [values, shape] = conv2d(layer, values, shape);
      else if (layer.type === "max_pool") [values, shape] = maxPool(layer, values, shape);
      else if (layer.type === "leaky_relu") {
        values = values.map((x) => (x > 0 ? x : layer.negative_slope * x));
      } else throw new Error(`unknown layer ${layer.type}`);
    }
    return values;
  }

  function readNetworks() {
    const networks = JSON.parse(document.getElementById("networks").textContent);
    for (const network of networks) {
      for (const layer of network.layers) {
        if (layer.kernel) layer.kernelValues = decodeWeights(layer.kernel);
        if (layer.bias) layer.biasValues = decodeWeights(layer.bias);
      }
    }
    return networks;
  }

  function describe(probabilities) {
    let digit = 0;
    for (let d = 1; d < probabilities.length; d++) {
      if (probabilities[d] > probabilities[digit]) digit = d;
    }
    return { digit, sure: probabilities[digit] };
  }

  function showAnswer(section, networks, image, source) {
    const output = section.querySelector("output[name=digit]");
    const bars = section.querySelector(".bars");
    const others = section.querySelector(".others");
    output.dataset.source = source;
    if (image === null) {
      output.textContent = "Nothing to read: there is no ink here.";
      output.dataset.answers = "[]";
      bars.replaceChildren();
      others.replaceChildren();
      drawSeen(section.querySelector(".seen"), null);
      return;
    }
    const answers = networks.map((network) => Array.from(predictDigit(network, image)));
    const { digit, sure } = describe(answers[0]);
    output.textContent = `${digit} (${(100 * sure).toFixed(1)}% sure)`;
    output.dataset.answers = JSON.stringify(answers);
    bars.replaceChildren(...answers[0].map((probability, d) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = `<span>${d}</span><meter min="0" max="1" value="${probability}"></meter>` +
        `<span>${(100 * probability).toFixed(1)}%</span>`;
      return row;
    }));
    others.replaceChildren(...networks.slice(1).map((network, i) => {
      const answer = describe(answers[i + 1]);
      const item = document.createElement("li");
      item.textContent = `${network.name}: ${answer.digit} (${(100 * answer.sure).toFixed(1)}%)`;
      return item;
    }));
    drawSeen(section.querySelector(".seen"), image);
  }

  // The 28x28 image the networks saw, light ink on black.
  function drawSeen(canvas, image) {
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(FRAME, FRAME);
    for (let i = 0; i < FRAME * FRAME; i++) {
      const level = image ? Math.round(255 * image[i]) : 0;
      pixels.data.set([level, level, level, 255], 4 * i);
    }
    context.putImageData(pixels, 0, 0);
  }

  function readCanvas(canvas) {
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    return toMnist(flattenAlpha(pixels.data, canvas.width, canvas.height),
      canvas.width, canvas.height);
  }

  function clearPad(pad) {
    const context = pad.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
  }

  // The drawing area keeps as many device pixels as the screen shows, so strokes land under
  // the pointer on high-DPI screens, scrolled or zoomed.
  function sizePad(pad) {
    const side = Math.round(pad.getBoundingClientRect().width * (window.devicePixelRatio || 1));
    if (side > 0 && pad.width !== side) {
      pad.width = side;
      pad.height = side;
      clearPad(pad);
    }
  }

  function startDrawing(section, networks) {
    const pad = section.querySelector(".pad");
    const context = pad.getContext("2d");
    let last = null;
    sizePad(pad);
    const point = (event) => {
      const box = pad.getBoundingClientRect();
      return [(event.clientX - box.left) * (pad.width / box.width),
        (event.clientY - box.top) * (pad.height / box.height)];
    };
    pad.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      pad.setPointerCapture(event.pointerId);
      last = point(event);
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#000";
      context.lineWidth = pad.width / 14;
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...last);
      context.stroke();
    });
    pad.addEventListener("pointermove", (event) => {
      if (last === null) return;
      event.preventDefault();
      const next = point(event);
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...next);
      context.stroke();
      last = next;
    });
    const finish = () => {
      if (last === null) return;
      last = null;
      showAnswer(section, networks, readCanvas(pad), "drawing");
    };
    pad.addEventListener("pointerup", finish);
    pad.addEventListener("pointercancel", finish);
    section.querySelector(".clear").addEventListener("click", () => {
      clearPad(pad);
      showAnswer(section, networks, readCanvas(pad), "drawing");
    });
    window.addEventListener("resize", () => sizePad(pad));
  }

  async function openImage(section, networks, file) {
    const output = section.querySelector("output[name=digit]");
    try {
      const bitmap = await createImageBitmap(file, {
        premultiplyAlpha: "none", colorSpaceConversion: "none",
      });
      if (bitmap.width * bitmap.height > MAX_PIXELS) {
        throw new RangeError(`${bitmap.width} x ${bitmap.height} pixels is too large`);
      }
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      showAnswer(section, networks, readCanvas(canvas), file.name);
    } catch (error) {
      output.dataset.source = file.name;
      output.dataset.answers = "[]";
      output.textContent = error instanceof RangeError
        ? `${file.name}: ${error.message}.`
        : `${file.name}: not an image this browser can read.`;
    }
  }

  function start() {
    const section = document.getElementById("try-it");
    // A lesson about no network of this build has no "Try it"; the quiz's script, which
    // follows this one, must still run.
    if (section === null) return;
    const networks = readNetworks();
    section.querySelector(".controls").hidden = false;
    startDrawing(section, networks);
    section.querySelector("input[type=file]").addEventListener("change", (event) => {
      const [file] = event.target.files;
      if (file) openImage(section, networks, file);
    });
  }

  return { flattenAlpha, toMnist, predictDigit, readNetworks, start };
})();

DigitPredictor.start();
