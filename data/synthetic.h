// The built-in synthetic audio-visual deepfake set, so that search, training and evaluation run offline.
// defines: SynthConfig, SynthClip, generate_synthetic, kSynthSampleRate
//
// Every clip is a talking face (K PNG frames of size x size pixels) and a 16 kHz mono 16-bit WAV, in the
// four FakeAVCeleb categories:
//   A RealVideo-RealAudio (label real)   B RealVideo-FakeAudio   C FakeVideo-RealAudio   D FakeVideo-FakeAudio
// Real audio is a voiced signal: a glottal pulse train with drifting pitch, jitter, shimmer and breath noise,
// through a cascade of formant resonators that move from vowel to vowel, under syllable envelopes with
// fricative bursts. Real video is a procedurally drawn face whose mouth opening follows the voice's loudness
// envelope. Fake audio is the same utterance "resynthesised" with vocoder-like artefacts: upper band cut,
// over-smooth harmonics (no jitter, shimmer or breath) and frame-rate buzz. Fake video is a face swap / lip
// sync: the inner face is colour-shifted and smoothed, pasted with a visible seam, and its mouth follows
// another utterance. `strength` in [0, 1] scales every artefact (0: fakes are drawn exactly like reals).
// A video-only detector cannot find B and an audio-only one cannot find C.
//
// No shortcuts: real and fake clips draw durations, loudness, silence structure, noise and every nuisance
// (lighting, face position and size, colours, background, camera noise and focus, pitch, vocal tract,
// speaking rate) from the same distributions; ids are opaque hashes of (seed, clip index) and the manifest is
// sorted by id. Frame k of K shows the instant (k + 0.5) * duration / K. The face box of a clip is the
// bounding box of the face ellipse; the mouth is centred at (0.5, 0.75) of it, 0.36 of its width wide.
//
// Layout of the output directory (paths in the manifest are relative to it):
//   manifest.csv                          id,split,label,category,frames,audio,face_box,source
//   synth.json                            the generator's parameters
//   clips/<id>/frames/frame_<k>.png       k zero-padded to at least two digits
//   clips/<id>/audio.wav
// Output depends only on the config (seed included), never on the thread count or the wall clock (for one
// build: another compiler or libm may round differently).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace stgs::data {

inline constexpr int kSynthSampleRate = 16000;

struct SynthConfig {
  int64_t clips = 200;  // clips in all, shared out over the categories by `mix`
  uint64_t seed = 1;
  int size = 64;                         // frame width and height in pixels
  int frames = 8;                        // K frames per clip
  double min_seconds = 3.0;              // audio duration, uniform in [min_seconds, max_seconds] per clip
  double max_seconds = 3.5;              //   (3.0 s = 300 spectrogram frames at hop 160)
  double strength = 1.0;                 // artefact strength in [0, 1]
  double split[3] = {0.70, 0.15, 0.15};  // train, val, test weights, applied within each category
  double mix[4] = {1, 1, 1, 1};          // relative counts of categories A, B, C, D (balanced by default)
  int threads = 0;                       // worker threads; 0 = OpenMP's default
  bool force = false;                    // replace an earlier set in a non-empty output directory

  // Throws naming the first value out of range.
  void validate() const;
};

// One manifest row (paths relative to the output directory).
struct SynthClip {
  std::string id, split, label, category, frames, audio;
  int box[4];  // face box x, y, w, h in pixels
};

// Writes the set into `out_dir` (created when missing) and returns its rows in manifest order. Refuses a
// non-empty directory unless config.force, which removes an earlier manifest.csv, synth.json and clips/ (and
// nothing else) first. The manifest is written last, through a temporary file and a rename, so an interrupted
// run never leaves a manifest that names missing files. `progress(done, total)` is called after each clip,
// from one thread at a time.
std::vector<SynthClip> generate_synthetic(const std::string& out_dir, const SynthConfig& config,
                                          const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace stgs::data
