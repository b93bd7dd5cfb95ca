// Audio reading, mixing, resampling and writing (see audio_io.h).
#include "data/audio_io.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/io/atomic_file.h"
#include "kernels/check.h"

namespace stgs::data {

namespace {

uint32_t little_u32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// libsndfile clamps a WAV data chunk that runs past the end of the file and decodes what is there, so a
// truncated download would pass as a shorter clip. Walk the RIFF chunks to the "data" chunk and compare its
// declared size with the bytes the file holds. Streaming writers that could not seek back put 0 or
// 0xFFFFFFFF there ("unknown"); those are accepted.
void check_wav_not_truncated(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const uint64_t file_size = std::filesystem::file_size(path);
  unsigned char header[12];
  if (!in.read(reinterpret_cast<char*>(header), 12) || std::memcmp(header, "RIFF", 4) != 0) return;  // RIFX etc.
  uint64_t pos = 12;
  unsigned char chunk[8];
  while (in.read(reinterpret_cast<char*>(chunk), 8)) {
    pos += 8;
    const uint64_t size = little_u32(chunk + 4);
    if (std::memcmp(chunk, "data", 4) == 0) {
      const uint64_t available = file_size - pos;
      STGS_CHECK(size == 0 || size == 0xFFFFFFFFu || size <= available, "audio file '", path,
                 "' is truncated: its WAV data chunk declares ", size, " bytes but only ", available, " follow");
      return;
    }
    pos += size + (size & 1);  // chunks are padded to an even length
    if (pos >= file_size) return;
    in.seekg(std::streamoff(pos));
  }
}

// An in-memory file for libsndfile's virtual I/O, so write_audio can hand complete bytes to AtomicFile.
struct MemoryFile {
  std::string bytes;
  sf_count_t pos = 0;
};

sf_count_t mem_length(void* user) { return sf_count_t(static_cast<MemoryFile*>(user)->bytes.size()); }

sf_count_t mem_seek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : sf_count_t(f->bytes.size());
  f->pos = std::max<sf_count_t>(0, base + offset);
  return f->pos;
}

sf_count_t mem_read(void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const sf_count_t n = std::clamp<sf_count_t>(sf_count_t(f->bytes.size()) - f->pos, 0, count);
  std::memcpy(ptr, f->bytes.data() + f->pos, size_t(n));
  f->pos += n;
  return n;
}

sf_count_t mem_write(const void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  if (size_t(f->pos + count) > f->bytes.size()) f->bytes.resize(size_t(f->pos + count));
  std::memcpy(f->bytes.data() + f->pos, ptr, size_t(count));
  f->pos += count;
  return count;
}

sf_count_t mem_tell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

int sndfile_format(AudioFormat format) {
  switch (format) {
    case AudioFormat::WavPcm16: return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    case AudioFormat::WavFloat: return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    case AudioFormat::Flac16: return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    case AudioFormat::OggVorbis: return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  }
  STGS_FAIL("write_audio: unknown AudioFormat ", int(format));
}

}  // namespace

Audio read_audio(const std::string& path) {
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  STGS_CHECK(file != nullptr, "cannot open audio file '", path, "': ",
             std::filesystem::exists(path) ? sf_strerror(nullptr) : "no such file");
  // A corrupt header can declare an absurd length; refuse it before allocating (2^30 samples is 4 GiB of
  // floats, over 9 hours of 16 kHz stereo, far beyond any clip).
  if (info.frames < 0 || info.channels < 1 || info.frames > (int64_t(1) << 30) / info.channels) {
    sf_close(file);
    STGS_FAIL("audio file '", path, "' declares ", info.frames, " frames of ", info.channels,
              " channels (corrupt header, or longer than 2^30 samples)");
  }
  // Read everything before checking, so the handle is closed on every path.
  std::vector<float> interleaved(size_t(info.frames) * size_t(info.channels));
  const sf_count_t got = info.frames > 0 ? sf_readf_float(file, interleaved.data(), info.frames) : 0;
  const std::string error = sf_error(file) != SF_ERR_NO_ERROR ? sf_strerror(file) : "";
  sf_close(file);
  STGS_CHECK(error.empty(), "audio file '", path, "' is truncated or corrupt: decoding failed: ", error);
  STGS_CHECK(info.samplerate >= 1, "audio file '", path, "' declares a sample rate of ", info.samplerate, " Hz");
  STGS_CHECK(info.frames > 0, "audio file '", path, "' holds no samples");
  STGS_CHECK(got == info.frames, "audio file '", path, "' is truncated or corrupt: its header declares ", info.frames,
             " frames but only ", got, " could be decoded");
  if ((info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV) check_wav_not_truncated(path);

  Audio audio;
  audio.sample_rate = info.samplerate;
  audio.samples.resize(size_t(info.frames));
  const int c = info.channels;
  for (size_t t = 0; t < audio.samples.size(); ++t) {
    float sum = 0;
    for (int k = 0; k < c; ++k) sum += interleaved[t * size_t(c) + size_t(k)];
    const float mono = sum / float(c);
    STGS_CHECK(std::isfinite(mono), "audio file '", path, "' holds a non-finite sample at frame ", t);
    audio.samples[t] = mono;
  }
  return audio;
}

std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate) {
  STGS_CHECK(from_rate > 0 && to_rate > 0, "resample: rates must be positive, got ", from_rate, " -> ", to_rate);
  if (from_rate == to_rate || x.empty()) return x;
  const double ratio = double(to_rate) / double(from_rate);
  // libsamplerate's limit; checked before the output is allocated (a header claiming 1 Hz would ask for
  // 16000x the input's memory first).
  STGS_CHECK(ratio >= 1.0 / 256 && ratio <= 256, "resample: ", from_rate, " -> ", to_rate,
             " Hz is outside libsamplerate's ratio range [1/256, 256]");
  const size_t target = size_t(std::llround(double(x.size()) * ratio));
  // The converter may stop a sample or two short of (or past) n * ratio; pad with zeros / trim so the
  // length depends only on n and the rates.
  std::vector<float> out(target + 16, 0.0f);
  SRC_DATA job{};
  job.data_in = x.data();
  job.input_frames = long(x.size());
  job.data_out = out.data();
  job.output_frames = long(out.size());
  job.src_ratio = ratio;
  job.end_of_input = 1;
  const int err = src_simple(&job, SRC_SINC_MEDIUM_QUALITY, 1);
  STGS_CHECK(err == 0, "resample ", from_rate, " -> ", to_rate, " Hz of ", x.size(), " samples failed: ",
             src_strerror(err));
  std::fill(out.begin() + std::min<long>(job.output_frames_gen, long(out.size())), out.end(), 0.0f);
  out.resize(target);
  return out;
}

std::vector<float> load_audio_16k(const std::string& path) {
  Audio audio = read_audio(path);
  STGS_CHECK(int64_t(audio.sample_rate) * 256 >= kSampleRate && audio.sample_rate <= int64_t(kSampleRate) * 256,
             "audio file '", path, "' declares a sample rate of ", audio.sample_rate, " Hz; ", kSampleRate / 256 + 1,
             " to ", int64_t(kSampleRate) * 256, " Hz can be resampled to ", kSampleRate, " Hz");
  return resample(audio.samples, audio.sample_rate, kSampleRate);
}

void write_audio(const std::string& path, const float* interleaved, int64_t frames, int channels, int sample_rate,
                 AudioFormat format) {
  STGS_CHECK(frames >= 0 && channels >= 1 && sample_rate >= 1, "write_audio '", path, "': ", frames, " frames, ",
             channels, " channels at ", sample_rate, " Hz");
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = sndfile_format(format);
  STGS_CHECK(sf_format_check(&info), "write_audio '", path, "': libsndfile cannot write this format with ",
             channels, " channels at ", sample_rate, " Hz");
  MemoryFile memory;
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SNDFILE* file = sf_open_virtual(&io, SFM_WRITE, &info, &memory);
  STGS_CHECK(file != nullptr, "write_audio '", path, "': ", sf_strerror(nullptr));
  // Without clipping, libsndfile wraps out-of-range floats around when converting to integers.
  sf_command(file, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t written = frames > 0 ? sf_writef_float(file, interleaved, frames) : 0;
  const std::string error = sf_error(file) != SF_ERR_NO_ERROR ? sf_strerror(file) : "";
  const int closed = sf_close(file);  // flushes the encoder and patches the header sizes
  STGS_CHECK(error.empty() && written == frames && closed == 0, "write_audio '", path, "': encoding failed after ",
             written, " of ", frames, " frames: ", error.empty() ? sf_error_number(closed) : error.c_str());
  write_file_atomically(path, memory.bytes, "write_audio: ");
}

}  // namespace stgs::data
