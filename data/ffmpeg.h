// Decoding videos and their sound with the `ffmpeg` program, run as a subprocess (the importers' only use of
// it; nothing links against libav*).
// defines: ProcessResult, run_process, find_program, find_ffmpeg, last_line, DecodeError,
//          decode_sampled_frames, decode_audio_16k
//
// Frames come back through a pipe as a stream of binary PPM images (`-f image2pipe -c:v ppm`, RGB24, every
// decoded frame, no frame-rate conversion), so each frame carries its own size and nothing needs a probe.
// Audio comes back as raw 32-bit floats, mixed to mono and resampled to 16 kHz by ffmpeg. A file ffmpeg cannot
// decode throws DecodeError with the file and the last line ffmpeg wrote to stderr (its reason).
#pragma once

#include <string>
#include <vector>

#include "data/image_io.h"
#include "kernels/check.h"

namespace stgs::data {

struct ProcessResult {
  int status = -1;  // the exit status, or 128 + the signal number when a signal ended it
  std::string out, err;
};

// Runs argv[0] (searched on PATH when it has no '/') with stdin from /dev/null, collecting stdout and stderr
// (read together, so neither pipe can fill up and stall the child). Throws only when it cannot start it.
ProcessResult run_process(const std::vector<std::string>& argv);

// The full path of `name` on PATH (or `name` itself when it contains a '/' and is executable); "" if none.
std::string find_program(const std::string& name);

// find_program("ffmpeg"), throwing a message that says how to install it when it is missing.
std::string find_ffmpeg();

// The last non-empty line of `text`, trimmed ("" when there is none): ffmpeg's reason for a failure.
std::string last_line(const std::string& text);

// A media file that ffmpeg could not decode (or decoded to nothing): a fault of the data, not of the program,
// so importers list it and go on. what() is "unreadable video or audio file '<file>': <reason>".
class DecodeError : public Error {
 public:
  DecodeError(std::string file, std::string reason);
  const std::string& file() const { return file_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_, reason_;
};

// K frames of the first video stream of `path`, spread evenly over its N decoded frames (frame
// sample_frame_indices(N, K)[i]), as RGB images at the video's size. A video whose raw frames fit in 1 GiB
// (STGS_FFMPEG_RAW_LIMIT bytes) is decoded whole and held in memory meanwhile (width x height x 3 bytes per
// frame); a larger one (ffprobe's size and packet count say; only files of at least limit / 1024 bytes are
// probed) has only the K picked frames leave ffmpeg, N being its packet count (a decoder that drops leading
// frames can shift the picks by those). Throws DecodeError when ffmpeg fails or yields no frame (or fewer
// frames than picks), stgs::Error when ffmpeg cannot be started.
std::vector<Image> decode_sampled_frames(const std::string& ffmpeg, const std::string& path, int k);

// The first audio stream of `path` (a video or an audio file) as 16 kHz mono floats in [-1, 1]. Throws
// DecodeError when ffmpeg fails (e.g. no audio stream) or yields no sample.
std::vector<float> decode_audio_16k(const std::string& ffmpeg, const std::string& path);

}  // namespace stgs::data
