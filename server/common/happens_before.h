// Orderings that ThreadSanitizer cannot see for itself. gRPC hands a call
// from thread to thread through its own atomics and futexes, inside a
// library that is not built with TSan; a handler that fills a response on
// one thread and a gRPC thread that later reads or frees it look
// unsynchronised. The thread that hands an object over calls
// HappensBefore(object) just before passing it to gRPC; the thread that
// receives it back (a reactor callback) calls HappensAfter(object) first.
// Outside a TSan build both compile to nothing.
#ifndef CASEWORK_SERVER_COMMON_HAPPENS_BEFORE_H_
#define CASEWORK_SERVER_COMMON_HAPPENS_BEFORE_H_

#if defined(__SANITIZE_THREAD__)
#define CASEWORK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CASEWORK_TSAN 1
#endif
#endif

#ifdef CASEWORK_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace casework {

inline void HappensBefore([[maybe_unused]] const void* object) {
#ifdef CASEWORK_TSAN
  __tsan_release(const_cast<void*>(object));
#endif
}

inline void HappensAfter([[maybe_unused]] const void* object) {
#ifdef CASEWORK_TSAN
  __tsan_acquire(const_cast<void*>(object));
#endif
}

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_HAPPENS_BEFORE_H_
