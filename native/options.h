// Checked reads of an object argument (an optimizer step's options or state): a missing or ill-typed field is a
// TypeError that names the entry point and the field, in the words of lib/errors.ts's `invalid()` ("Expected a
// number for options.lr but received undefined of type undefined"), never a crash or a silent default. The
// TypeScript layer validates ranges first; these checks are the last line against a raw native call.
#pragma once

#include <string>
#include <vector>

#include "common.h"

namespace tn {

class ObjectArg {
 public:
  // info[i] must be an object; `who` names the entry point, `name` the argument ("options", "state").
  ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* who, const char* name)
      : env_(info.Env()), who_(who), name_(name) {
    Napi::Value v = i < info.Length() ? info[i] : env_.Undefined();
    if (!v.IsObject() || v.IsArray()) Fail("", "an object", v);
    obj_ = v.As<Napi::Object>();
  }

  double Number(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsNumber()) Fail(key, "a number", v);
    return v.As<Napi::Number>().DoubleValue();
  }

  bool Boolean(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsBoolean()) Fail(key, "a boolean", v);
    return v.As<Napi::Boolean>().Value();
  }

  // An array of numbers (tensor handles, step counts); `optional` accepts null or undefined as an empty list.
  std::vector<double> Numbers(const char* key, bool optional = false) const {
    Napi::Value v = obj_.Get(key);
    std::vector<double> out;
    if (optional && (v.IsNull() || v.IsUndefined())) return out;
    if (!v.IsArray()) Fail(key, optional ? "an array of numbers or null" : "an array of numbers", v);
    Napi::Array a = v.As<Napi::Array>();
    out.reserve(a.Length());
    for (uint32_t k = 0; k < a.Length(); ++k) {
      Napi::Value e = a.Get(k);
      if (!e.IsNumber()) Fail((std::string(key) + "[" + std::to_string(k) + "]").c_str(), "a number", e);
      out.push_back(e.As<Napi::Number>().DoubleValue());
    }
    return out;
  }

  // An array of booleans.
  std::vector<bool> Booleans(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsArray()) Fail(key, "an array of booleans", v);
    Napi::Array a = v.As<Napi::Array>();
    std::vector<bool> out;
    out.reserve(a.Length());
    for (uint32_t k = 0; k < a.Length(); ++k) {
      Napi::Value e = a.Get(k);
      if (!e.IsBoolean()) Fail((std::string(key) + "[" + std::to_string(k) + "]").c_str(), "a boolean", e);
      out.push_back(e.As<Napi::Boolean>().Value());
    }
    return out;
  }

 private:
  // lib/errors.ts describe(): the value (strings quoted) and its type.
  static std::string Describe(Napi::Value v) {
    if (v.IsUndefined()) return "undefined of type undefined";
    if (v.IsNull()) return "null of type null";
    if (v.IsArray()) return "an array of type array";
    if (v.IsString()) {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 57) s = s.substr(0, 57) + "...";
      return "\"" + s + "\" of type string";
    }
    if (v.IsNumber() || v.IsBoolean()) return v.ToString().Utf8Value() + " of type " + (v.IsNumber() ? "number" : "boolean");
    if (v.IsFunction()) return "a function of type function";
    return "an object of type object";
  }

  [[noreturn]] void Fail(const std::string& key, const char* what, Napi::Value v) const {
    const std::string field = key.empty() ? name_ : name_ + "." + key;
    throw Napi::TypeError::New(env_, who_ + ": Expected " + what + " for " + field + " but received " + Describe(v));
  }

  Napi::Env env_;
  std::string who_;
  std::string name_;
  Napi::Object obj_;
};

}  // namespace tn
